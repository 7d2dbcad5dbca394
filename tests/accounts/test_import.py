"""`selfservice accounts import`: an export with accents, duplicates, bad dates and missing columns."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from selfservice.cli import main
from selfservice.directory.models import DirectoryAccount
from selfservice.extensions import db
from tests.conftest import AuthActions

HEADER = (
    "login,kind,first_name,last_name,student_id,birth_month_year,"
    "parent_account_number,parent_pin,email,phone,groups\n"
)
ROWS = [
    "s3000001,student,José,Núñez Peña,3000001,11/2011,,,jose.nunez@students.example.org,,",
    "s3000002,Student,Zoë,Ångström,3000002,2012-04,,,,,",
    "s3000003,student,Anaïs,Étienne,3000003,042012,,,,,",
    "p4000001,parent,Marie-Thérèse,Désir,,,4000001,5521,mt.desir@example.org,555-0199,",
    "t5000001,staff,Tomás,Ibáñez,,,,,tomas.ibanez@school.example.org,,Staff;Help Desk",
    # refused rows
    "s3000001,student,José,Núñez,3000009,11/2011,,,,,",  # login again
    "s3000004,student,Duplicate,Id,3000002,01/2012,,,,,",  # student ID again
    "s3000005,student,Bad,Month,3000005,13/2011,,,,,",
    "s3000006,student,Bad,Format,3000006,November 2011,,,,,",
    "s3000007,student,No,Birth,3000007,,,,,,",
    "x3000008,teacher,Wrong,Kind,,,,,,,",
    "s3000010,student,Taken,Id,1000001,03/2012,,,,,",  # a seeded student's ID
]


def write_csv(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "export.csv"
    path.write_text(text, encoding="utf-8")
    return path


def run_import(app: Flask, path: Path, *options: str) -> Any:
    return app.test_cli_runner().invoke(main, ["accounts", "import", str(path), *options])


def accounts(app: Flask) -> dict[str, DirectoryAccount]:
    with app.app_context():
        rows = db.session.scalars(select(DirectoryAccount)).all()
        found = {row.login: row for row in rows}
        for row in rows:
            row.groups  # noqa: B018 - loaded before the session closes
        db.session.expunge_all()
        return found


def test_an_export_with_accents_duplicates_and_bad_dates_imports_the_good_rows(
    app: Flask, tmp_path: Path
) -> None:
    result = run_import(app, write_csv(tmp_path, HEADER + "\n".join(ROWS) + "\n"))
    assert result.exit_code == 1  # some rows were refused
    assert "12 rows: 5 were created, 0 were updated, 0 unchanged, 7 refused" in result.output
    for line, reason in [
        (7, "login 's3000001' is already on line 2"),
        (8, "student_id '3000002' is already on line 3"),
        (9, "birth_month_year '13/2011' is not a month and year"),
        (10, "birth_month_year 'November 2011' is not a month and year"),
        (11, "a student needs a student_id and a birth_month_year"),
        (12, "kind 'teacher' is not student, parent or staff"),
        (13, "student_id '1000001' belongs to the account 's1000001' already"),
    ]:
        assert f"line {line} " in result.output
        assert reason in result.output
    found = accounts(app)
    jose = found["s3000001"]
    assert (jose.display_name, jose.kind, jose.birth_month_year) == ("José Núñez Peña", "student", "112011")
    assert found["s3000002"].birth_month_year == "042012"
    assert found["p4000001"].display_name == "Marie-Thérèse Désir"
    assert {group.name for group in found["t5000001"].groups} == {"Staff", "Help Desk"}
    assert "s3000005" not in found


def test_running_the_same_file_twice_changes_nothing_and_keeps_the_keys(app: Flask, tmp_path: Path) -> None:
    path = write_csv(tmp_path, HEADER + "\n".join(ROWS[:5]) + "\n")
    assert run_import(app, path).exit_code == 0
    keys = {login: row.id for login, row in accounts(app).items()}
    again = run_import(app, path)
    assert again.exit_code == 0
    assert "5 rows: 0 were created, 0 were updated, 5 unchanged, 0 refused" in again.output
    assert {login: row.id for login, row in accounts(app).items()} == keys


def test_a_changed_row_updates_the_account_in_place(app: Flask, tmp_path: Path) -> None:
    run_import(app, write_csv(tmp_path, HEADER + ROWS[0] + "\n"))
    key = accounts(app)["s3000001"].id
    changed = ROWS[0].replace("jose.nunez@students.example.org", "jose@students.example.org")
    result = run_import(app, write_csv(tmp_path, HEADER + changed + "\n"))
    assert "1 were updated" in result.output
    assert accounts(app)["s3000001"].email == "jose@students.example.org"
    assert accounts(app)["s3000001"].id == key


def test_a_dry_run_reports_and_changes_nothing(app: Flask, tmp_path: Path) -> None:
    result = run_import(app, write_csv(tmp_path, HEADER + "\n".join(ROWS) + "\n"), "--dry-run")
    assert "12 rows: 5 would be created" in result.output
    assert "s3000001" not in accounts(app)


def test_a_file_missing_a_required_column_is_refused_whole(app: Flask, tmp_path: Path) -> None:
    result = run_import(app, write_csv(tmp_path, "login,first_name,last_name\ns9,Ana,Ruiz\n"))
    assert result.exit_code == 1
    assert "the file has no column kind" in result.output
    assert "s9" not in accounts(app)


def test_an_imported_account_cannot_sign_in_until_a_password_is_set(app: Flask, tmp_path: Path) -> None:
    run_import(app, write_csv(tmp_path, HEADER + ROWS[0] + "\n"))
    response = AuthActions(app.test_client()).login("s3000001", "anything-at-all-1")
    assert response.status_code != 303


def test_disable_and_set_must_change(app: Flask) -> None:
    runner = app.test_cli_runner()
    assert runner.invoke(main, ["accounts", "disable", "S1000001"]).output == "s1000001: disabled\n"
    assert runner.invoke(main, ["accounts", "set-must-change", "s1000002"]).exit_code == 0
    found = accounts(app)
    assert found["s1000001"].disabled
    assert found["s1000002"].must_change
    assert AuthActions(app.test_client()).login("s1000001").status_code != 303
    unknown = runner.invoke(main, ["accounts", "disable", "nobody"])
    assert unknown.exit_code == 1
    assert "no built-in account with the login 'nobody'" in unknown.output


@pytest.mark.parametrize(
    ("login", "row"),
    [
        ("s1000001", "S1000001,student,Ana,Lopez,1000001,03/2012,,,ana.lopez@students.school.test,,"),
        ("teacher1", "TEACHER1,staff,Tina,Teacher,,,,,teacher1@school.test,555-0201,employees;library"),
    ],
)
def test_a_login_in_other_letter_case_updates_the_account_instead_of_shadowing_it(
    app: Flask, tmp_path: Path, login: str, row: str
) -> None:
    """District exports often upper-case logins: S1000001 is the seeded s1000001, not a second account."""
    key = accounts(app)[login].id
    result = run_import(app, write_csv(tmp_path, HEADER + row + "\n"))
    assert result.exit_code == 0, result.output
    assert "1 rows: 0 were created, 0 were updated, 1 unchanged" in result.output
    assert [account.id for name, account in accounts(app).items() if name.casefold() == login] == [key]
    # The holder still signs in: the login names one account, not two.
    assert AuthActions(app.test_client()).login(login).status_code == 303


def test_values_too_long_for_the_directory_or_holding_a_nul_refuse_their_row_only(
    app: Flask, tmp_path: Path
) -> None:
    rows = [
        "s3000001,student,A,B,3000001,11/2011,,," + "a" * 250 + "@example.org,,",
        "s3000002,student,A,B,3000002,11/2011,,,," + "5" * 41 + ",",
        "s3000003,student,A,B," + "3" * 41 + ",11/2011,,,,,",
        "s3000004,student,A,B,3000004,11/2011,,,,," + "g" * 129,
        "s3000005,student,A\x00,B,3000005,11/2011,,,,,",
        "p4000001,parent,C,D,,,4000001," + "9" * 41 + ",,,",
        "s3000006,student,Good,Row,3000006,11/2011,,,,,",
    ]
    result = run_import(app, write_csv(tmp_path, HEADER + "\n".join(rows) + "\n"))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "7 rows: 1 were created, 0 were updated, 0 unchanged, 6 refused" in result.output
    for line, reason in [
        (2, "email is longer than 254 characters"),
        (3, "phone is longer than 40 characters"),
        (4, "student_id is longer than 40 characters"),
        (5, "group " + repr("g" * 129) + " is longer than 128 characters"),
        (6, "first_name holds a NUL character"),
        (7, "parent_pin is longer than 40 characters"),
    ]:
        assert f"line {line} ({'p4000001' if line == 7 else f's300000{line - 1}'}): {reason}" in result.output
    assert set(accounts(app)) & {f"s300000{n}" for n in range(1, 7)} == {"s3000006"}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("s3000001,student,José,Núñez,3000001,11/2011,,,,,\n".encode("latin-1"), "line 3 is not UTF-8"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe", "line 3 is not UTF-8"),
        (('s3000001,student,"' + "x" * 200_000 + '",B,3000001,11/2011,,,,,\n').encode(), "line 3 is not CSV"),
    ],
)
def test_a_file_that_is_not_utf8_csv_is_refused_whole_with_the_line(
    app: Flask, tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "export.csv"
    path.write_bytes(HEADER.encode() + b"s3000009,student,Ok,Row,3000009,11/2011,,,,,\n" + content)
    result = run_import(app, path)
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert message in result.output
    assert "s3000009" not in accounts(app)  # nothing of the file was saved
