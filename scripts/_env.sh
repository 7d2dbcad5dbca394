# Shared by scripts/demo and scripts/test: a virtual environment in .venv with the project
# installed editable in it (the same install for both), and one instance folder: instance/ in
# the checkout, as the README says, unless SELFSERVICE_INSTANCE_PATH names another.
# Installs Debian packages with apt-get only when they are missing and we are root.

export SELFSERVICE_INSTANCE_PATH=${SELFSERVICE_INSTANCE_PATH:-$PWD/instance}

apt_install() {
  local missing=()
  for package in "$@"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
  done
  ((${#missing[@]})) || return 0
  if [ "$(id -u)" != 0 ]; then
    echo "Missing system packages: ${missing[*]} (run as root, or install them with apt-get)" >&2
    return 1
  fi
  echo "Installing system packages: ${missing[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}

ensure_venv() {
  local python=${PYTHON:-python3}
  if [ ! -x .venv/bin/python ]; then
    if ! "$python" -m venv .venv 2>/dev/null; then
      rm -rf .venv
      apt_install python3-venv
      "$python" -m venv .venv
    fi
    .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip >&2
  fi
}

# ensure_installed [EXTRAS]: pip install -e ".[EXTRAS]" unless that very install is done already
# (same pyproject.toml), so a restart does not reinstall anything.
ensure_installed() {
  local spec=".${1:+[$1]}" stamp=.venv/.selfservice-installed want
  want="$(sha256sum pyproject.toml | cut -d' ' -f1) $spec"
  if [ -x .venv/bin/selfservice ] && [ -f "$stamp" ] && grep -qxF "$want" "$stamp"; then
    return 0
  fi
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -e "$spec" >&2
  # The bytecode `selfservice serve` runs its workers on (-OO), written once here rather
  # than at the first start; a standard library we may not write to is only a warning.
  .venv/bin/selfservice serve --compile-only >/dev/null || echo "(continuing)" >&2
  echo "$want" >>"$stamp"
}
