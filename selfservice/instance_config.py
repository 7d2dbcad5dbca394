"""`selfservice init`: a commented instance config.toml for a directory flavour, with a fresh secret key."""

from __future__ import annotations

import secrets

FLAVOURS = ("builtin", "openldap", "ad")

HEADER = """\
# selfservice instance configuration, written by `selfservice init --directory {directory}`.
# Every setting is described in docs/configuration.md; SELFSERVICE_* environment variables
# override what is here. Run `selfservice check` after each change: it proves the setup on
# the live services and names the setting behind each failure.

# Signs sessions and tokens. Keep it secret; changing it signs everyone out.
secret_key = "{secret_key}"

district_name = "School District"
# The public https:// address of the portal: links in mail are built from it alone.
# Required outside demo and debug.
{base_url_line}
# help_desk_phone = "555-0100"
# help_desk_email = "helpdesk@district.example"

# The database: SQLite in this folder by default; PostgreSQL for several workers or hosts.
# database_url = "postgresql+psycopg://portal@db.district.example/portal"
# With more than one web worker the rate limiter needs shared storage:
# web_workers = 4
# ratelimit_storage_uri = "redis://127.0.0.1:6379/0"

# Mail (notices, codes, help-desk links) goes through the outbox; `selfservice deliver-mail` sends it.
# smtp_host = "mail.district.example"
# smtp_port = 587
# smtp_security = "starttls"
# mail_from = "Password Portal <password@district.example>"

directory = "{directory}"
"""

BUILTIN = """
# The built-in directory keeps accounts in the portal's database. Load them from your
# student information system export: `selfservice accounts import accounts.csv`.
# Role groups are group names given in that file's "groups" column.
# role_groups = { employee = "employees", support = "support", its = "its", admin = "admins" }
"""

OPENLDAP = """
ldap_url = "ldap://ldap.district.example"
ldap_start_tls = true
# ldap_ca_file = "/etc/ssl/certs/district-ca.pem"
ldap_base_dn = "ou=people,dc=district,dc=example"
ldap_group_base_dn = "ou=groups,dc=district,dc=example"
ldap_bind_dn = "cn=selfservice,ou=services,dc=district,dc=example"
# The password: SELFSERVICE_LDAP_BIND_PASSWORD in the environment, not in this file.
# ldap_user_filter = "(objectClass=inetOrgPerson)"

# Only the attributes that differ from the defaults (docs/directories.md); the rest keep them.
# An account without a kind attribute counts as staff.
# ldap_attributes = { student_id = "employeeNumber", kind = "employeeType" }

# Each role's group, by cn or by full DN; names may contain spaces.
# role_groups = { employee = "Staff", support = "Help Desk", its = "ITS", admin = "Portal Admins" }
"""

AD = """
# Active Directory takes passwords only over LDAPS or StartTLS.
ldap_url = "ldaps://dc1.district.example"
# ldap_ca_file = "/etc/ssl/certs/district-ca.pem"
ldap_base_dn = "OU=People,DC=district,DC=example"
ldap_group_base_dn = "OU=Groups,DC=district,DC=example"
ldap_bind_dn = "CN=svc-selfservice,OU=Services,DC=district,DC=example"
# The password: SELFSERVICE_LDAP_BIND_PASSWORD in the environment, not in this file.
# The delegation the service account needs: docs/directories.md.

# Only the attributes that differ from the defaults; the rest keep them.
# An account without a kind attribute counts as staff.
# ad_attributes = { student_id = "employeeID", kind = "employeeType" }

# Each role's group, by cn or by full DN (nested membership counts).
# role_groups = { employee = "Staff", support = "Help Desk", its = "ITS", admin = "Portal Admins" }
"""

BODIES = {"builtin": BUILTIN, "openldap": OPENLDAP, "ad": AD}


def config_text(directory: str, secret_key: str | None = None, base_url: str = "") -> str:
    """The config.toml text for ``directory`` (builtin, openldap or ad)."""
    if directory not in FLAVOURS:
        raise ValueError(f"directory must be one of {', '.join(FLAVOURS)}")
    key = secret_key or secrets.token_urlsafe(48)
    line = (
        f"base_url = {base_url!r}".replace("'", '"')
        if base_url
        else '# base_url = "https://password.district.example"'
    )
    return HEADER.format(directory=directory, secret_key=key, base_url_line=line) + BODIES[directory]
