"""Who is calling the API and whether they may: Bacalhau v1.9's users, capabilities and their checks.

users.py         the configured users, checked at start-up; passwords (bcrypt or plain) and API keys
capabilities.py  which capability a request needs (read:job, write:node, ...), and whether actions grant it
authorizer.py    a request's Authorization header -> approved / unidentified (401) / forbidden (403)
"""
