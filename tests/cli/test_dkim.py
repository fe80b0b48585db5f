"""`digest dkim keygen` as an operator runs it, and a process that cannot sign."""

from __future__ import annotations

from pathlib import Path

from tests.cli.commands import run


def test_keygen_prints_the_record_and_the_settings_that_sign_with_it(
    env: dict[str, str], tmp_path: Path
) -> None:
    made = run(
        "dkim",
        "keygen",
        "--domain",
        "Example.ORG",
        "--selector",
        "s1",
        "--out",
        "keys",
        "--algorithm",
        "ed25519",
        env=env,
        cwd=tmp_path,
    )
    assert made.returncode == 0, made.stderr
    assert 's1._domainkey.example.org. IN TXT "v=DKIM1; k=ed25519; p=' in made.stdout
    assert "DIGEST_DKIM_DOMAIN=example.org" in made.stdout
    assert (tmp_path / "keys" / "s1.example.org.ed25519.pem").is_file()


def test_a_command_that_sends_refuses_to_start_with_a_key_it_cannot_use(
    env: dict[str, str], tmp_path: Path
) -> None:
    broken = tmp_path / "key.pem"
    broken.write_text("not a key\n")
    signing = {
        **env,
        "DIGEST_DKIM_DOMAIN": "example.org",
        "DIGEST_DKIM_SELECTOR": "s1",
        "DIGEST_DKIM_PRIVATE_KEY_FILE": str(broken),
    }
    refused = run("send-due", env=signing, cwd=tmp_path)
    assert refused.returncode == 2
    assert "error: DKIM:" in refused.stderr and "key.pem" in refused.stderr
    half = {**env, "DIGEST_DKIM_DOMAIN": "example.org"}
    refused = run("send-due", env=half, cwd=tmp_path)
    assert refused.returncode != 0 and "DIGEST_DKIM_SELECTOR" in refused.stderr
