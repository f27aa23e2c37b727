"""Helpers shared by the interop scripts: ports, waiting for weir, reading the file
exporter's OTLP JSON lines."""
import json, os, socket, time


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_port(port, proc, timeout=30):
    """Waits until something listens on `port`; fails if `proc` (weir) exits first."""
    end = time.time() + timeout
    while time.time() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"weir exited early with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


def attrs(kvs):
    """OTLP JSON key/value list -> dict of the values."""
    out = {}
    for kv in kvs or []:
        v = kv.get("value", {})
        out[kv["key"]] = next(iter(v.values())) if v else None
    return out


def read_lines(path):
    """The JSON documents of a file exporter's output, one per line."""
    docs = []
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                line = line.strip()
                if line:
                    docs.append(json.loads(line))
    return docs


def hexid(n, width):
    return format(n, f"0{width}x")


def venv_python(env_var, name, probe, packages, env=None):
    """The python of `~/.cache/<name>` (created with `packages` when `probe` does not import
    there), or the one `env_var` names: exporters whose pinned dependencies clash with the
    test requirements run in a virtualenv of their own."""
    import subprocess, sys
    py = os.environ.get(env_var)
    if py:
        return py
    venv = os.path.expanduser(os.path.join("~/.cache", name))
    py = os.path.join(venv, "bin", "python")
    # A missing interpreter (a fresh machine) is created, not run.
    if (not os.path.exists(py)
            or subprocess.run([py, "-c", probe], capture_output=True, env=env).returncode != 0):
        subprocess.run([sys.executable, "-m", "venv", venv], check=True)
        subprocess.run([py, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
                       + list(packages), check=True)
    return py
