"""knobd's bearer token: the file is held to ssh's rules for keys, and the scheme is read in any case."""
import http.client
import os
import subprocess

import pytest

from knobd_process import free_port, knobd_path


def start_with_token_file(home, text, mode):
    path = os.path.join(home, "token")
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)
    try:
        return subprocess.run([knobd_path(), "--home", home, "--listen", f"127.0.0.1:{free_port()}", "--token-file", path],
                              capture_output=True, text=True, timeout=20), path
    except subprocess.TimeoutExpired:
        pytest.fail("knobd started with a token file it should have refused")


@pytest.mark.parametrize("mode, says", [(0o644, "read"), (0o604, "read"), (0o602, "change"), (0o666, "change")])
def test_a_token_file_others_can_read_or_change_is_refused(knobd_home, mode, says):
    result, path = start_with_token_file(knobd_home, "a-long-enough-token-1234567890\n", mode)
    assert result.returncode == 1, result
    assert f"other users can {says} it" in result.stderr and f"chmod 600 {path}" in result.stderr, result.stderr
    assert not os.path.exists(os.path.join(knobd_home, "knobd.sock"))


@pytest.mark.parametrize("text, says", [("   \t \n", "holds no token"), ("\n", "holds no token"), ("", "holds no token"),
                                        ("ab\n", "has 2 bytes, fewer than 16"), ("  fifteen-bytes!!  \n", "has 15 bytes")])
def test_an_empty_or_short_token_is_refused(knobd_home, text, says):
    result, path = start_with_token_file(knobd_home, text, 0o600)
    assert result.returncode == 1, result
    assert path in result.stderr and says in result.stderr, result.stderr


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER", "bEaReR"])
def test_the_bearer_scheme_is_read_in_any_case(spawn_knobd, scheme):
    daemon = spawn_knobd().start()
    connection = http.client.HTTPConnection("127.0.0.1", daemon.port, timeout=5)
    for header, expected in [(f"{scheme} {daemon.token}", 200), (f"{scheme}  {daemon.token}", 200),
                             (f"{scheme} {daemon.token[:-1]}", 401), (f"{scheme}{daemon.token}", 401),
                             (f"Basic {daemon.token}", 401), (daemon.token, 401)]:
        connection.request("GET", "/v1/experiments", headers={"Authorization": header})
        response = connection.getresponse()
        response.read()
        assert response.status == expected, f"Authorization: {header!r} got {response.status}"
        if expected == 401:
            assert response.getheader("WWW-Authenticate") == "Bearer"
    connection.close()
    assert daemon.stop() == 0
