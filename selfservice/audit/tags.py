"""Every audit tag the portal writes, shaped ``source:subject:action``."""

from enum import StrEnum


class Tag(StrEnum):
    # Sign-in to the portal
    LOGIN_SUCCESS = "auth:session:login"
    LOGIN_FAILURE = "auth:session:login-failed"
    LOGOUT = "auth:session:logout"
    REAUTH_FAILED = "auth:session:reauth-failed"
    SIGN_IN_THROTTLED = "auth:session:throttled"
    # Account holder's own actions
    PASSWORD_CHANGED = "account:password:change"
    PASSWORD_CHANGE_FAILED = "account:password:change-failed"
    PASSWORD_RESET = "account:password:reset"
    ENROLLMENT_SAVED = "account:enrollment:save"
    ENROLLMENT_CLEARED = "account:enrollment:clear"
    RECOVERY_STARTED = "account:recovery:start"
    RECOVERY_ANSWER_FAILED = "account:recovery:answer-failed"
    RECOVERY_VERIFIED = "account:recovery:verified"
    RECOVERY_CODE_SENT = "account:recovery:code-sent"
    RECOVERY_CODE_FAILED = "account:recovery:code-failed"
    TOKEN_REFUSED = "account:token:refused"
    LOCKED = "account:selfservice:locked"
    UNLOCKED = "account:selfservice:unlocked"
    # Throttling
    RATE_LIMIT_BREACH = "ratelimit:request:breach"
    # Help desk
    HELP_REQUEST_OPENED = "helpdesk:request:open"
    HELP_REQUEST_REFUSED = "helpdesk:request:refused"
    HELP_REQUEST_UPDATED = "helpdesk:request:update"
    RESET_LINK_ISSUED = "helpdesk:reset-link:issue"
    HELP_REQUEST_ESCALATED = "helpdesk:request:escalate"
    HELP_REQUEST_RESOLVED = "helpdesk:request:resolve"
    RESET_LINK_USED = "helpdesk:reset-link:use"
    RESET_LINK_REFUSED = "helpdesk:reset-link:refused"
    # Admin
    QUESTION_CHANGED = "admin:question:change"
    RETENTION_PURGED = "admin:retention:purge"
    AUDIT_EXPORTED = "admin:audit:export"
