"""Corp secrets at rest: envelope encryption with a KMS data key (moto's KMS locally).

Each corp's secrets are sealed with AES-256-GCM under a fresh data key; only the KMS-encrypted
data key is stored beside the ciphertext. The KMS encryption context names the corp, so a sealed
blob copied onto another corp's item does not open. Plaintext never reaches logs or API responses
(`SecretStr` hides it in reprs).
"""

from __future__ import annotations

import base64
import json
from typing import Any

from pydantic import SecretStr

from chalicelib.platform import aws
from chalicelib.platform.model import Model
from chalicelib.platform.settings import get_settings


class CorpSecrets(Model):
    callback_token: SecretStr
    encoding_aes_key: SecretStr
    contact_secret: SecretStr

    def plain(self) -> dict[str, str]:
        return {name: getattr(self, name).get_secret_value() for name in type(self).model_fields}


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def seal(secrets: CorpSecrets, *, corp_id: str) -> dict[str, str]:
    from Crypto.Cipher import AES

    resp = aws.client("kms").generate_data_key(
        KeyId=get_settings().kms_key_id,
        KeySpec="AES_256",
        EncryptionContext={"corp_id": corp_id},
    )
    cipher = AES.new(resp["Plaintext"], AES.MODE_GCM)
    ciphertext, tag = cipher.encrypt_and_digest(json.dumps(secrets.plain()).encode())
    return {
        "data_key": _b64(resp["CiphertextBlob"]),
        "nonce": _b64(cipher.nonce),
        "ciphertext": _b64(ciphertext),
        "tag": _b64(tag),
    }


def unseal(sealed: dict[str, Any], *, corp_id: str) -> CorpSecrets:
    from Crypto.Cipher import AES

    data_key = aws.client("kms").decrypt(
        CiphertextBlob=base64.b64decode(sealed["data_key"]),
        EncryptionContext={"corp_id": corp_id},
    )["Plaintext"]
    cipher = AES.new(data_key, AES.MODE_GCM, nonce=base64.b64decode(sealed["nonce"]))
    plain = cipher.decrypt_and_verify(
        base64.b64decode(sealed["ciphertext"]), base64.b64decode(sealed["tag"])
    )
    return CorpSecrets.model_validate(json.loads(plain))


def ensure_local_key(kms_client: Any, alias: str) -> str:
    """Create the secrets key and its alias if absent (moto locally; infra/ creates it in AWS)."""
    for entry in kms_client.list_aliases()["Aliases"]:
        if entry["AliasName"] == alias and entry.get("TargetKeyId"):
            return entry["TargetKeyId"]
    key_id = kms_client.create_key(Description="SCRM corp secrets")["KeyMetadata"]["KeyId"]
    kms_client.create_alias(AliasName=alias, TargetKeyId=key_id)
    return key_id
