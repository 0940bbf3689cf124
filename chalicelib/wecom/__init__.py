"""The WeCom protocol: callback crypto, callback events, the API client. No AWS here.

Nothing is imported eagerly: the callback Lambda must not pay for httpx on a cold start.
"""
