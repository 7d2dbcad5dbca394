"""Built-in directory accounts: import from a student information system export, disable, must-change."""
