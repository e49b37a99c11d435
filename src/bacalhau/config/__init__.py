"""Node configuration: Bacalhau's keys and defaults; defaults < config file < env < flags."""
