"""Settings: defaults < instance/config.toml < SELFSERVICE_* environment variables.

Every setting has a default here, and its type is the default's type: an
environment value is converted to it (``true``/``false`` for flags, JSON or a
comma-separated list for lists, JSON for tables). Names say their unit.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ENV_PREFIX = "SELFSERVICE_"

DEFAULTS: dict[str, Any] = {
    # Site
    "DISTRICT_NAME": "School District",
    "DISTRICT_NAME_BY_LANGUAGE": {},
    "HELP_DESK_PHONE": "",
    "HELP_DESK_EMAIL": "",
    "BASE_URL": "",
    "TIME_ZONE": "America/New_York",
    "SUPPORT_DAYS": ["mon", "tue", "wed", "thu", "fri"],
    "SUPPORT_OPENS": "07:30",
    "SUPPORT_CLOSES": "16:30",
    "SUPPORT_HOLIDAYS": [],
    "SUPPORT_HOURS_NOTE_BY_LANGUAGE": {},
    "DEFAULT_LANGUAGE": "en",
    "LANGUAGES": ["en", "es", "ht", "fr"],
    "DEMO": False,
    "DEBUG": False,
    "TESTING": False,
    "SECRET_KEY": "",
    # Database and shared storage
    "DATABASE_URL": "",
    "RATELIMIT_STORAGE_URI": "memory://",
    "RATELIMIT_KEY_PREFIX": "selfservice",
    "PROXY_HOPS": 0,
    "WEB_WORKERS": 1,
    # Sessions
    "SESSION_COOKIE_SECURE": True,
    "SESSION_IDLE_MINUTES": 15,
    "SESSION_ABSOLUTE_HOURS": 12,
    "SESSION_RECHECK_SECONDS": 60,
    # Throttling (flask-limiter syntax; several limits separated by ";")
    "SIGN_IN_RATE_LIMIT": "10 per minute;50 per hour",
    "RECOVERY_RATE_LIMIT": "10 per minute;50 per hour",
    "PASSWORD_RATE_LIMIT": "10 per minute;50 per hour",
    "GLOBAL_RATE_LIMIT": "600 per minute",
    "SIGN_IN_ACCOUNT_RATE_LIMIT": "5 per minute;30 per hour",
    "TRUSTED_NETWORKS": [],
    "TRUSTED_SIGN_IN_RATE_LIMIT": "300 per minute;3000 per hour",
    "TRUSTED_RECOVERY_RATE_LIMIT": "100 per minute;1000 per hour",
    "TRUSTED_PASSWORD_RATE_LIMIT": "100 per minute;1000 per hour",
    "ARGON2_MAX_CONCURRENT": 2,  # 19 MiB live each; beyond the cores, no throughput (docs/benchmarks.md)
    "ARGON2_WAIT_SECONDS": 5,
    "LOCKOUT_MAX_FAILURES": 5,
    "LOCKOUT_WINDOW_MINUTES": 15,
    "LOCKOUT_MINUTES": 30,
    "LOCKOUT_MAX_FAILURES_PER_DAY": 20,
    "LOCKOUT_NOTICE_FAILURES_PER_DAY": 8,
    # Enrollment and recovery
    "ENROLL_QUESTION_COUNT": 5,
    "RECOVERY_QUESTION_COUNT": 3,
    "ANSWER_MIN_LENGTH": 3,
    "ANSWER_MAX_LENGTH": 100,
    "ANSWER_FORBID_QUESTION_WORDS_MIN_LETTERS": 4,
    "REAUTH_MINUTES": 10,
    "RECOVERY_CHALLENGE_MINUTES": 30,
    "RECOVERY_TOKEN_MINUTES": 10,
    # An unknown login that fully matches a regex is keyed as the template's login (a made-up
    # student ID shares its decoy with "s" + the ID, as a real student's ID shares its challenge).
    "RECOVERY_ALIAS_PATTERNS": [["([0-9]+)", "s\\1"]],
    # Second factor by account kind: required, if-available or off
    "SECOND_FACTOR": {"student": "off", "parent": "if-available", "staff": "if-available"},
    # Staff sign-in second factor (TOTP, RFC 6238) by role: required or off
    "STAFF_SECOND_FACTOR": {"admin": "required", "its": "required", "support": "off", "employee": "off"},
    "CODE_MINUTES": 10,
    "CODE_TRIES": 3,
    # Password policy (NIST 800-63B: length and guessability; composition rules off)
    "PASSWORD_MIN_LENGTH": 8,
    "PASSWORD_MAX_LENGTH": 128,
    "PASSWORD_MIN_SCORE": 3,
    "PASSWORD_BANNED_WORDS": [],
    "PASSWORD_REQUIRE_UPPER": False,
    "PASSWORD_REQUIRE_LOWER": False,
    "PASSWORD_REQUIRE_DIGIT": False,
    "PASSWORD_REQUIRE_SYMBOL": False,
    # Help desk
    "RESET_LINK_HOURS_STUDENT": 72,
    "RESET_LINK_HOURS_PARENT": 24,
    # A password change left open (reply lost, worker killed) is settled by the sweeper after this.
    "RECONCILE_AFTER_MINUTES": 5,
    "HELPDESK_INTAKE_EMAIL": "",
    "HELPDESK_MISMATCH_RATE_LIMIT": "5 per 15 minutes",
    # Retention (selfservice purge)
    "RETENTION_DAYS_AUDIT": 365,
    "RETENTION_DAYS_MAIL": 90,
    "RETENTION_DAYS_REQUESTS": 365,
    # Directory
    "DIRECTORY": "builtin",
    "LOGIN_FIELDS": ["login", "student_id", "email"],
    "ROLE_GROUPS": {
        "employee": "employees",
        "support": "support",
        "its": "its",
        "admin": "admins",
    },
    "LDAP_URL": "ldap://127.0.0.1:389",
    "LDAP_START_TLS": False,
    "LDAP_CA_FILE": "",
    "LDAP_VALIDATE_CERT": True,
    "LDAP_BIND_DN": "",
    "LDAP_BIND_PASSWORD": "",
    "LDAP_BASE_DN": "",
    "LDAP_USER_FILTER": "(objectClass=inetOrgPerson)",
    "LDAP_GROUP_BASE_DN": "",
    "LDAP_CONNECT_TIMEOUT_SECONDS": 3,
    "LDAP_OPERATION_TIMEOUT_SECONDS": 5,
    "LDAP_ATTRIBUTES": {
        "login": "uid",
        "email": "mail",
        "display_name": "cn",
        "phone": "telephoneNumber",
        "student_id": "schoolStudentId",
        "birth_month_year": "schoolBirthMonthYear",
        "parent_account_number": "schoolParentAccountNumber",
        "parent_pin": "schoolParentPin",
        "kind": "schoolAccountKind",
        "unique_id": "entryUUID",
    },
    # Active Directory (DIRECTORY = "ad"): the LDAP_* connection settings above, plus AD's schema.
    # "login" matches sAMAccountName or, when "principal_name" is set, userPrincipalName too.
    # The msDS-cloudExtensionAttribute* are free single-valued strings in every AD since 2012.
    "AD_USER_FILTER": "(&(objectCategory=person)(objectClass=user))",
    "AD_ATTRIBUTES": {
        "login": "sAMAccountName",
        "principal_name": "userPrincipalName",
        "email": "mail",
        "display_name": "displayName",
        "phone": "telephoneNumber",
        "student_id": "employeeID",
        "birth_month_year": "msDS-cloudExtensionAttribute1",
        "parent_account_number": "employeeNumber",
        "parent_pin": "msDS-cloudExtensionAttribute2",
        "kind": "employeeType",
        "unique_id": "objectGUID",
    },
    # Hashing (argon2id, for answers and builtin passwords)
    "ARGON2_MEMORY_KIB": 19456,
    "ARGON2_TIME_COST": 2,
    "ARGON2_PARALLELISM": 1,
    # Mail
    "MAIL_FROM": "selfservice@localhost",
    "SMTP_HOST": "",
    "SMTP_PORT": 25,
    "SMTP_SECURITY": "none",
    "SMTP_USERNAME": "",
    "SMTP_PASSWORD": "",
    "SMTP_TIMEOUT_SECONDS": 10,
    "SMTP_CA_FILE": "",
    # Mail delivery worker (selfservice deliver-mail)
    "MAIL_MAX_ATTEMPTS": 12,
    "MAIL_RETRY_BASE_SECONDS": 60,
    "MAIL_RETRY_MAX_SECONDS": 3600,
    "MAIL_BATCH_SIZE": 20,
    "MAIL_CLAIM_SECONDS": 600,
    "MAIL_POLL_SECONDS": 10,
    # Password synchronization (selfservice/sync): targets besides the primary DIRECTORY
    "SYNC_TARGETS": [],
    "SYNC_PRIMARY_LABEL": "",
    "SYNC_PRIMARY_LABEL_BY_LANGUAGE": {},
    "SYNC_ENCRYPTION_KEY": "",
    "SYNC_PROMISE_MINUTES": 15,
    "SYNC_HOLD_HOURS": 72,
    "SYNC_MAX_ATTEMPTS": 20,
    "SYNC_RETRY_BASE_SECONDS": 30,
    "SYNC_RETRY_MAX_SECONDS": 900,
    "SYNC_BATCH_SIZE": 20,
    "SYNC_CLAIM_SECONDS": 300,
    "SYNC_POLL_SECONDS": 5,
    # API for the district's other systems (docs/api.md)
    "API_DEFAULT_RATE_LIMIT": "120 per minute",
    "API_AUTH_FAILURE_RATE_LIMIT": "30 per minute;300 per hour",
    "API_EVENTS_SETTLE_SECONDS": 10,
    "WEBHOOK_URLS": [],
    "WEBHOOK_SECRET": "",
    "WEBHOOK_TIMEOUT_SECONDS": 10,
    "WEBHOOK_MAX_ATTEMPTS": 12,
    "WEBHOOK_RETRY_BASE_SECONDS": 30,
    "WEBHOOK_RETRY_MAX_SECONDS": 3600,
    "WEBHOOK_BATCH_SIZE": 20,
    "WEBHOOK_CLAIM_SECONDS": 300,
    "WEBHOOK_POLL_SECONDS": 5,
    # Parent account activation (/activate)
    "ACTIVATION_RATE_LIMIT": "10 per minute;50 per hour",
    "ACTIVATION_ACCOUNT_RATE_LIMIT": "10 per hour",
    "ACTIVATION_ADDRESS_RATE_LIMIT": "3 per hour",
    "ACTIVATION_MINUTES": 30,
    "ACTIVATION_DIRECTORY_ATTRIBUTE": "",
}

#: Settings whose values are masked wherever settings are shown.
SECRET_SETTINGS = frozenset(
    {"SECRET_KEY", "LDAP_BIND_PASSWORD", "SMTP_PASSWORD", "SYNC_ENCRYPTION_KEY", "WEBHOOK_SECRET"}
)


#: "demo" is the builtin directory seeded with the demo accounts.
DIRECTORY_KINDS = ("builtin", "demo", "openldap", "ad")
SECOND_FACTOR_MODES = ("required", "if-available", "off")


class ConfigError(ValueError):
    """A setting is missing, malformed or unsafe; the message names it."""


def load_settings(instance_path: Path, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Merge defaults, instance/config.toml, the environment and ``overrides``."""
    settings = dict(DEFAULTS)
    for source in (_read_toml(instance_path / "config.toml"), _read_environment(os.environ), overrides or {}):
        _merge(settings, source)
    if not settings["DATABASE_URL"]:
        settings["DATABASE_URL"] = f"sqlite:///{instance_path / 'selfservice.sqlite'}"
    return settings


#: Tables merged key by key with the defaults: a partial table changes only the keys it names.
MERGED_TABLES = ("LDAP_ATTRIBUTES", "AD_ATTRIBUTES", "ROLE_GROUPS", "SECOND_FACTOR")
#: Attribute fields without which no account can be found or kept apart.
REQUIRED_ATTRIBUTES = ("login", "unique_id")


def _merge(settings: dict[str, Any], source: Mapping[str, Any]) -> None:
    for key, value in source.items():
        if key in MERGED_TABLES and isinstance(value, Mapping) and isinstance(settings.get(key), Mapping):
            settings[key] = {**settings[key], **value}
        else:
            settings[key] = value


def _read_toml(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    return {key.upper(): value for key, value in data.items()}


def _read_environment(environ: Mapping[str, str]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX):
            continue
        key = name.removeprefix(ENV_PREFIX)
        found[key] = convert(key, raw, DEFAULTS.get(key, ""))
    return found


def convert(key: str, raw: str, default: Any) -> Any:
    """Turn the text of an environment variable into the type of ``default``."""
    try:
        if isinstance(default, bool):
            return _to_bool(raw)
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, list):
            return json.loads(raw) if raw.lstrip().startswith("[") else _split(raw)
        if isinstance(default, dict):
            value = json.loads(raw)
            if not isinstance(value, dict):
                raise ValueError("expected a JSON object")
            return value
    except ValueError as exc:
        raise ConfigError(f"{ENV_PREFIX}{key}: cannot read {raw!r} ({exc})") from exc
    return raw


def _to_bool(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError("expected true or false")


def _split(raw: str) -> list[str]:
    return [part.strip() for part in raw.split(",") if part.strip()]


def validate(settings: Mapping[str, Any]) -> None:
    """Refuse settings that are malformed, or unsafe outside demo, debug and tests."""
    for key, default in DEFAULTS.items():
        value = settings.get(key)
        if isinstance(default, bool | int) and not isinstance(value, type(default)):
            raise ConfigError(f"{key} must be {type(default).__name__}, got {value!r}")
    if settings["DIRECTORY"] not in DIRECTORY_KINDS:
        raise ConfigError(
            f"DIRECTORY must be one of {', '.join(DIRECTORY_KINDS)}, got {settings['DIRECTORY']!r}"
        )
    _validate_tables(settings)
    if settings["WEB_WORKERS"] > 1 and str(settings["RATELIMIT_STORAGE_URI"]).startswith("memory://"):
        raise ConfigError(
            f"RATELIMIT_STORAGE_URI is memory:// but WEB_WORKERS is {settings['WEB_WORKERS']}: "
            "each worker would count on its own; use redis://"
        )
    _validate_languages(settings)
    _check_choices(settings)
    _check_base_url(str(settings["BASE_URL"]))
    _validate_limits(settings)
    _validate_alias_patterns(settings["RECOVERY_ALIAS_PATTERNS"])
    if settings["DEMO"] or settings["DEBUG"] or settings["TESTING"]:
        return
    if len(settings["SECRET_KEY"]) < 32:
        raise ConfigError("SECRET_KEY must be set to a random value of at least 32 characters")
    if not settings["SESSION_COOKIE_SECURE"]:
        raise ConfigError("SESSION_COOKIE_SECURE must be true outside demo and debug")
    if settings["DIRECTORY"] == "demo":
        raise ConfigError("DIRECTORY is 'demo' (shared demo passwords): use builtin, openldap or ad")
    if not settings["BASE_URL"]:
        raise ConfigError(
            "BASE_URL must be set outside demo and debug (the https:// address links in mail point at; "
            "never taken from a request's Host header)"
        )


#: Settings with a fixed set of values, checked at start in every mode: a typo is refused,
#: never read as some default (an unknown SECOND_FACTOR value once meant "off").
STAFF_SECOND_FACTOR_MODES = ("required", "off")
SMTP_SECURITY_MODES = ("none", "starttls", "ssl")
ROLES = ("employee", "support", "its", "admin")


def _check_choices(settings: Mapping[str, Any]) -> None:
    # SECOND_FACTOR and ROLE_GROUPS are checked with the other mapping tables (_validate_tables).
    _check_table(settings, "STAFF_SECOND_FACTOR", ROLES, STAFF_SECOND_FACTOR_MODES)
    security = settings["SMTP_SECURITY"]
    if str(security).lower() not in SMTP_SECURITY_MODES:
        raise ConfigError(f"SMTP_SECURITY must be one of {', '.join(SMTP_SECURITY_MODES)}, got {security!r}")
    enrolled, asked = settings["ENROLL_QUESTION_COUNT"], settings["RECOVERY_QUESTION_COUNT"]
    if enrolled < 1:
        raise ConfigError(f"ENROLL_QUESTION_COUNT must be at least 1, got {enrolled}")
    if not 1 <= asked <= enrolled:
        # Asked more than enrolled, a real account would be asked fewer questions than a stranger's decoy.
        raise ConfigError(
            f"RECOVERY_QUESTION_COUNT must be from 1 to ENROLL_QUESTION_COUNT ({enrolled}), got {asked}"
        )


def _check_table(
    settings: Mapping[str, Any], name: str, keys: tuple[str, ...], values: tuple[str, ...] | None
) -> None:
    table = settings[name]
    if not isinstance(table, Mapping):
        raise ConfigError(f"{name} must be a table, got {table!r}")
    for key, value in table.items():
        if key not in keys:
            raise ConfigError(f"{name} has an unknown key {key!r}: use {', '.join(keys)}")
        if values is not None and value not in values:
            raise ConfigError(f"{name}[{key!r}] must be one of {', '.join(values)}, got {value!r}")


def _check_base_url(url: str) -> None:
    if not url:
        return
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise ConfigError(
            f"BASE_URL must be an http(s) address such as https://password.district.example, got {url!r}"
        )


def _validate_tables(settings: Mapping[str, Any]) -> None:
    """Each mapping table holds only known keys, each with a text value; groups are never empty."""
    for table in MERGED_TABLES:
        value = settings.get(table)
        if not isinstance(value, Mapping):
            raise ConfigError(f"{table} must be a table, got {value!r}")
        for key, item in value.items():
            if key not in DEFAULTS[table]:
                known = ", ".join(DEFAULTS[table])
                raise ConfigError(f"{table}.{key} is not a known key (known: {known})")
            if not isinstance(item, str):
                raise ConfigError(f"{table}.{key} must be text, got {item!r}")
    for role, group in settings["ROLE_GROUPS"].items():
        if not group.strip():
            raise ConfigError(f"ROLE_GROUPS.{role} is empty: name the group (cn or DN) of the {role} role")
    for table in ("LDAP_ATTRIBUTES", "AD_ATTRIBUTES"):
        for key in REQUIRED_ATTRIBUTES:
            if not settings[table][key].strip():
                raise ConfigError(f"{table}.{key} is empty: every account needs it")
    for kind, mode in settings["SECOND_FACTOR"].items():
        if mode not in SECOND_FACTOR_MODES:
            raise ConfigError(
                f"SECOND_FACTOR.{kind} must be one of {', '.join(SECOND_FACTOR_MODES)}, got {mode!r}"
            )


def _validate_alias_patterns(pairs: Any) -> None:
    """RECOVERY_ALIAS_PATTERNS: a list of [regex, template] pairs of text; each regex compiles."""
    if not isinstance(pairs, list):
        raise ConfigError(f"RECOVERY_ALIAS_PATTERNS must be a list of [regex, template] pairs, got {pairs!r}")
    for pair in pairs:
        if not (isinstance(pair, list | tuple) and len(pair) == 2 and all(isinstance(p, str) for p in pair)):
            raise ConfigError(f"RECOVERY_ALIAS_PATTERNS: each item must be [regex, template], got {pair!r}")
        try:
            re.compile(pair[0])
        except re.error as exc:
            raise ConfigError(f"RECOVERY_ALIAS_PATTERNS: {pair[0]!r} is not a regex ({exc})") from exc


#: The languages the portal ships complete catalogs for.
SHIPPED_LANGUAGES = ("en", "es", "ht", "fr")


def _validate_languages(settings: Mapping[str, Any]) -> None:
    unknown = [code for code in settings["LANGUAGES"] if code not in SHIPPED_LANGUAGES]
    if unknown or not settings["LANGUAGES"]:
        raise ConfigError(f"LANGUAGES must be some of {', '.join(SHIPPED_LANGUAGES)}, got {unknown or '[]'}")
    if settings["DEFAULT_LANGUAGE"] not in settings["LANGUAGES"]:
        raise ConfigError(f"DEFAULT_LANGUAGE must be one of LANGUAGES, got {settings['DEFAULT_LANGUAGE']!r}")
    for key in (
        "DISTRICT_NAME_BY_LANGUAGE",
        "SUPPORT_HOURS_NOTE_BY_LANGUAGE",
        "SYNC_PRIMARY_LABEL_BY_LANGUAGE",
    ):
        table = settings[key]
        if not isinstance(table, dict) or not all(isinstance(text, str) for text in table.values()):
            raise ConfigError(f"{key} must be a table of language code = text")
        if unknown := sorted(set(table) - set(settings["LANGUAGES"])):
            raise ConfigError(f"{key} names languages not in LANGUAGES: {', '.join(unknown)}")


def _validate_limits(settings: Mapping[str, Any]) -> None:
    """Every limit parses and every trusted network is a CIDR, or the portal does not start."""
    from limits import parse_many

    for key in DEFAULTS:
        if key.endswith("_RATE_LIMIT"):
            try:
                parse_many(str(settings[key]))
            except ValueError as exc:
                raise ConfigError(f"{key}: cannot read {settings[key]!r} ({exc})") from exc
    for network in settings["TRUSTED_NETWORKS"]:
        try:
            ipaddress.ip_network(str(network).strip(), strict=False)
        except ValueError as exc:
            raise ConfigError(f"TRUSTED_NETWORKS: {network!r} is not a network ({exc})") from exc
    if settings["ARGON2_MAX_CONCURRENT"] < 1:
        raise ConfigError("ARGON2_MAX_CONCURRENT must be at least 1")


def masked(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The settings with every secret replaced by asterisks, for display."""
    shown = {}
    for key in sorted(DEFAULTS):
        value = settings.get(key)
        shown[key] = "********" if key in SECRET_SETTINGS and value else value
    shown["DATABASE_URL"] = mask_url(str(settings.get("DATABASE_URL", "")))
    shown["SYNC_TARGETS"] = [_mask_target(target) for target in settings.get("SYNC_TARGETS") or []]
    return shown


def _mask_target(target: Any) -> Any:
    """A sync target's table with the secrets of its own settings masked."""
    if not isinstance(target, Mapping) or not isinstance(target.get("settings"), Mapping):
        return target
    own = {
        key: "********" if str(key).upper() in SECRET_SETTINGS and value else value
        for key, value in target["settings"].items()
    }
    return {**target, "settings": own}


def mask_url(url: str) -> str:
    """``url`` fit to show: the password in its credentials, if any, replaced by ********."""
    scheme, sep, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    if not at or ":" not in credentials:
        return url
    user = credentials.split(":", 1)[0]
    return f"{scheme}{sep}{user}:********@{host}"
