"""Wiring only: routes, queue consumers and schedules -> functions in chalicelib.

Heavy modules (boto3, httpx, pycryptodome) are imported inside the handlers, on first use, to
keep the Lambda cold start small.
"""

import os

from chalice import Chalice

from chalicelib.api import corps as corps_api

app = Chalice(app_name="scrm")
app.register_blueprint(corps_api.bp)

EVENTS_QUEUE = os.environ.get("SCRM_EVENTS_QUEUE", "scrm-events")


@app.route("/wecom/{corp_id}/callback", methods=["GET", "POST"], content_types=["*/*"])
def wecom_callback(corp_id):
    from chalicelib import callback

    request = app.current_request
    return callback.handle(request.method, corp_id, request.query_params, request.raw_body)


@app.on_sqs_message(queue=EVENTS_QUEUE, batch_size=10, maximum_batching_window_in_seconds=0)
def on_events(event):
    from chalicelib import consumer

    return consumer.handle_batch([(r.to_dict()["messageId"], r.body) for r in event])
