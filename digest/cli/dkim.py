"""``digest dkim``: keys for signing mail, and the DNS record that publishes them."""

from __future__ import annotations

import enum
import os
from pathlib import Path
from typing import Annotated

import typer

dkim_cli = typer.Typer(help="DKIM keys for signing mail.", no_args_is_help=True)


class KeyAlgorithm(enum.StrEnum):
    # Mirrors digest.mail.dkim.Algorithm, which --help must not import.
    RSA = "rsa"
    ED25519 = "ed25519"


@dkim_cli.command("keygen")
def keygen(
    domain: Annotated[str, typer.Option(help="The signing domain (d=), usually From's domain.")],
    selector: Annotated[str, typer.Option(help="The selector (s=), e.g. digest2026.")],
    out: Annotated[Path, typer.Option(help="Directory for the private key file.")],
    algorithm: Annotated[
        KeyAlgorithm,
        typer.Option(help="rsa (2048 bits, verified everywhere) or ed25519 (RFC 8463)."),
    ] = KeyAlgorithm.RSA,
) -> None:
    """Write a new private key and print the DNS TXT record to publish for it."""
    from digest.mail.dkim import Algorithm, DkimError, check_selector, dns_txt_strings, generate_key

    try:
        check_selector(selector)
        ascii_domain = domain.strip().rstrip(".").encode("idna").decode("ascii").lower()
    except (DkimError, UnicodeError) as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
    key = generate_key(Algorithm(algorithm.value))
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{selector}.{ascii_domain}.{algorithm.value}.pem"
    try:
        # Readable by its owner alone, and never over an existing key: a key
        # replaced while its record is published breaks every signature.
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        typer.echo(f"error: {path} exists; choose another selector", err=True)
        raise typer.Exit(1) from None
    with os.fdopen(descriptor, "wb") as file:
        file.write(key.to_pem())
    name = f"{selector}._domainkey.{ascii_domain}"
    record = " ".join(f'"{part}"' for part in dns_txt_strings(key.dns_value()))
    typer.echo(f"private key written to {path}")
    typer.echo("")
    typer.echo("Publish this DNS TXT record:")
    typer.echo(f"{name}. IN TXT {record}")
    typer.echo("")
    typer.echo("Then sign with:")
    typer.echo(f"DIGEST_DKIM_DOMAIN={ascii_domain}")
    typer.echo(f"DIGEST_DKIM_SELECTOR={selector}")
    typer.echo(f"DIGEST_DKIM_PRIVATE_KEY_FILE={path.resolve()}")
