"""Self-service: enroll challenge answers, recover a forgotten password, change a known one."""
