"""`python -m bacalhau ...`: the `bacalhau` command run by this interpreter.

`bacalhau devstack` starts its nodes this way, so that they run the very same code and venv as the
devstack itself, whatever is (or is not) on PATH.
"""

from bacalhau.cli.main import main

if __name__ == "__main__":
    main()
