"""Answer hashing, tokens, password policy, throttling."""
