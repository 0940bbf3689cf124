"""What the benches share: a realistic callback and a bench deployment's environment.

Standard library only: bench/cold_start.py times fresh interpreters, so importing this must not
load anything the measured code would otherwise pay for.
"""

from __future__ import annotations

# WeCom's published sample key and corp (wecom-api.md section 7), with our own token.
TOKEN = "QDG6eK"
AES_KEY = "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt"
CORP_ID = "ww1436e0e65a779aee"
NONCE = "1372623149"

# A realistic add_external_contact plaintext (format with ts=...).
PLAINTEXT = (
    "<xml><ToUserName><![CDATA[ww1436e0e65a779aee]]></ToUserName>"
    "<FromUserName><![CDATA[sys]]></FromUserName><CreateTime>{ts}</CreateTime>"
    "<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[change_external_contact]]></Event>"
    "<ChangeType><![CDATA[add_external_contact]]></ChangeType>"
    "<UserID><![CDATA[zhangsan]]></UserID>"
    "<ExternalUserID><![CDATA[wmAJ2GCAAAXtWyujaWJHDDGi0mACAAAA]]></ExternalUserID>"
    "<State><![CDATA[ch_2024spring]]></State>"
    "<WelcomeCode><![CDATA[CALLBACK_CODE_9f3c2a1b7e6d5c4b3a29]]></WelcomeCode></xml>"
)

# What a deployed function reads (chalicelib.platform.settings): a bench deployment's resource names.
DEPLOYMENT_ENV = {
    "AWS_REGION": "us-east-1",
    "SCRM_TABLE_NAME": "scrm-bench",
    "SCRM_EVENTS_QUEUE": "scrm-bench-events",
    "SCRM_SENDS_QUEUE": "scrm-bench-sends",
    "SCRM_SYNC_QUEUE": "scrm-bench-sync",
    "SCRM_KMS_KEY_ID": "alias/scrm-bench-secrets",
    "SCRM_ADMIN_KEY": "bench-admin-key",
}
