"""A second slapd: a district's own schema (lakeside* attributes), role groups with spaces,
and a ppolicy of at least 10 characters with a history of 3 (the docs' worked example).

Started once per session, with the machinery of tests/slapd.py, only by the tests that ask
for the ``district_slapd`` fixture (a plugin of tests/conftest.py: the doctor tests and the
sync tests, where it is an OpenLDAP target with its own attribute names, share one).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from string import Template
from typing import Any

import pytest

from tests.scratch import free_port
from tests.slapd import (
    Slapd,
    _check,
    _require_slapd,
    _start,
    _stop,
    _wait_until_answering,
)

HERE = Path(__file__).resolve().parents[1] / "ldap" / "district"
BASE = "dc=lakeside,dc=k12"
PEOPLE = f"ou=People,{BASE}"
GROUPS = f"ou=Groups,{BASE}"
SERVICE_DN = f"cn=password-portal,ou=Services,{BASE}"
SERVICE_PASSWORD = "Lakeside-Service-Secret-1"
ROOT_DN = f"cn=admin,{BASE}"
ROOT_PASSWORD = "Lakeside-Root-Secret-1"
PASSWORD = "Lakeside-Seed-Password-1"

#: The mapping docs/directories.md gives for this directory.
ATTRIBUTES = {
    "student_id": "lakesideStudentNumber",
    "birth_month_year": "lakesideBirthMonth",
    "parent_account_number": "lakesideFamilyAccount",
    "parent_pin": "lakesideFamilyPin",
    "kind": "lakesideRole",
}
ROLE_GROUPS = {
    "employee": "All Staff",
    "support": "Help Desk",
    "its": "ITS Accounts",
    "admin": "Portal Admins",
}

PEOPLE_ENTRIES: list[tuple[str, str, dict[str, str]]] = [
    (
        "s7000001",
        "José Núñez",
        {"lakesideRole": "student", "lakesideStudentNumber": "7000001", "lakesideBirthMonth": "112011"},
    ),
    (
        "p8000001",
        "Marie Désir",
        {
            "lakesideRole": "parent",
            "lakesideFamilyAccount": "8000001",
            "lakesideFamilyPin": "4411",
            "mail": "marie.desir@example.org",
        },
    ),
    ("t9000001", "Tomás Ibáñez", {"lakesideRole": "staff", "mail": "tomas@lakeside.example"}),
    ("h9000002", "Hana Help", {"lakesideRole": "staff", "mail": "hana@lakeside.example"}),
]
GROUP_MEMBERS = {
    "All Staff": ["t9000001", "h9000002"],
    "Help Desk": ["h9000002"],
    "ITS Accounts": ["h9000002"],
    "Portal Admins": ["h9000002"],
}


def district_settings(url: str) -> dict[str, Any]:
    return {
        "DIRECTORY": "openldap",
        "LDAP_URL": url,
        "LDAP_START_TLS": False,
        "LDAP_BIND_DN": SERVICE_DN,
        "LDAP_BIND_PASSWORD": SERVICE_PASSWORD,
        "LDAP_BASE_DN": PEOPLE,
        "LDAP_GROUP_BASE_DN": GROUPS,
        "LDAP_CONNECT_TIMEOUT_SECONDS": 2,
        "LDAP_OPERATION_TIMEOUT_SECONDS": 3,
        "LDAP_ATTRIBUTES": ATTRIBUTES,
        "ROLE_GROUPS": ROLE_GROUPS,
    }


def _entries() -> list[tuple[str, dict[str, list[str]]]]:
    entries = [
        (BASE, {"objectClass": ["dcObject", "organization"], "dc": ["lakeside"], "o": ["Lakeside Schools"]}),
        *[
            (f"ou={name},{BASE}", {"objectClass": ["organizationalUnit"], "ou": [name]})
            for name in ("People", "Groups", "Services", "Policies")
        ],
        (
            f"cn=default,ou=Policies,{BASE}",
            {
                "objectClass": ["device", "pwdPolicy"],
                "cn": ["default"],
                "pwdAttribute": ["userPassword"],
                "pwdMinLength": ["10"],
                "pwdInHistory": ["3"],
                "pwdCheckQuality": ["1"],
                "pwdMinAge": ["0"],
            },
        ),
        (
            SERVICE_DN,
            {
                "objectClass": ["applicationProcess", "simpleSecurityObject"],
                "cn": ["password-portal"],
                "userPassword": [SERVICE_PASSWORD],
            },
        ),
    ]
    for login, name, extra in PEOPLE_ENTRIES:
        attributes = {
            "objectClass": ["inetOrgPerson", "lakesidePerson"],
            "uid": [login],
            "cn": [name],
            "sn": [name.split()[-1]],
            "userPassword": [PASSWORD],
            **{key: [value] for key, value in extra.items()},
        }
        entries.append((f"uid={login},{PEOPLE}", attributes))
    for group, members in GROUP_MEMBERS.items():
        entries.append(
            (
                f"cn={group},{GROUPS}",
                {
                    "objectClass": ["groupOfNames"],
                    "cn": [group],
                    "member": [f"uid={m},{PEOPLE}" for m in members],
                },
            )
        )
    return entries


@pytest.fixture(scope="session")
def district_slapd() -> Iterator[Slapd]:
    binary = _require_slapd()
    run_dir = Path(tempfile.mkdtemp(prefix="selfservice-district-"))
    (run_dir / "data").mkdir()
    conf = run_dir / "slapd.conf"
    conf.write_text(
        Template((HERE / "slapd.conf.template").read_text()).substitute(
            schema_file=HERE / "lakeside.schema",
            run_dir=run_dir,
            base_dn=BASE,
            root_dn=ROOT_DN,
            root_password=ROOT_PASSWORD,
            service_dn=SERVICE_DN,
        )
    )
    port = free_port()
    url = f"ldap://127.0.0.1:{port}"
    log = run_dir / "slapd.log"
    process = _start(binary, conf, f"{url}/", log)
    instance = Slapd(
        url=url,
        run_dir=run_dir,
        process=process,
        base_dn=BASE,
        bind_dn=SERVICE_DN,
        bind_password=SERVICE_PASSWORD,
        root_dn=ROOT_DN,
        root_password=ROOT_PASSWORD,
    )
    try:
        _wait_until_answering(process, port, log)
        connection = instance.root_connection()
        for dn, attributes in _entries():
            _check(connection, connection.add(dn, attributes=attributes))
        connection.unbind()
        yield instance
    finally:
        _stop(process)
        shutil.rmtree(run_dir, ignore_errors=True)
