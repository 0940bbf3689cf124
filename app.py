"""Wiring only: routes, queue consumers and schedules -> functions in chalicelib.

Heavy modules (boto3, httpx, pycryptodome) are imported inside the handlers, on first use, to
keep the Lambda cold start small. Queue names come from the stage's environment.
"""

import os

from chalice import Chalice, Cron, Rate

from chalicelib.broadcasts import routes as broadcasts
from chalicelib.channel_codes import routes as channel_codes
from chalicelib.churn import routes as churn
from chalicelib.console import routes as console
from chalicelib.corps import routes as corps
from chalicelib.customers import routes as customers
from chalicelib.group_codes import routes as group_codes
from chalicelib.groups import routes as groups
from chalicelib.handovers import routes as handovers
from chalicelib.segments import routes as segments
from chalicelib.sop_calendars import routes as sop_calendars
from chalicelib.stats import routes as stats
from chalicelib.tags import routes as tags
from chalicelib.toolbar import routes as toolbar
from chalicelib.welcome import routes as welcome

app = Chalice(app_name="scrm")
# Each capability's operator API is one blueprint (chalicelib/<capability>/routes.py).
for capability in (corps, channel_codes, welcome, tags, customers, groups, group_codes, segments, broadcasts,
                   sop_calendars, handovers, churn, stats, toolbar):
    app.register_blueprint(capability.bp)
# The operator console: static pages over the public API above (chalicelib/console).
app.register_blueprint(console.bp)

EVENTS_QUEUE = os.environ.get("SCRM_EVENTS_QUEUE", "scrm-events")
SYNC_QUEUE = os.environ.get("SCRM_SYNC_QUEUE", "scrm-sync")
SENDS_QUEUE = os.environ.get("SCRM_SENDS_QUEUE", "scrm-sends")


@app.route("/wecom/{corp_id}/callback", methods=["GET", "POST"], content_types=["*/*"])
def wecom_callback(corp_id):
    from chalicelib.platform import callback

    request = app.current_request
    return callback.handle(request.method, corp_id, request.query_params, request.raw_body)


# Batch sizes and windows must equal chalicelib.platform.queues' specs (infra/package.py checks it).
@app.on_sqs_message(queue=EVENTS_QUEUE, batch_size=10, maximum_batching_window_in_seconds=0)
def on_events(event):
    from chalicelib.platform import consumer

    return consumer.handle_batch([(r.to_dict()["messageId"], r.body) for r in event])


@app.on_sqs_message(queue=SYNC_QUEUE, batch_size=1, maximum_batching_window_in_seconds=0)
def on_sync(event):
    from chalicelib.customers import sync as customer_sync
    from chalicelib.platform import consumer, queues

    return consumer.handle_each([(r.to_dict()["messageId"], r.body) for r in event], customer_sync.handle_message,
                                queue=queues.SYNC)


@app.on_sqs_message(queue=SENDS_QUEUE, batch_size=5, maximum_batching_window_in_seconds=1)
def on_sends(event):
    from chalicelib.broadcasts import sender

    return sender.handle_batch([(r.to_dict()["messageId"], r.body) for r in event])


@app.schedule(Rate(1, unit=Rate.MINUTES))
def tick_minute(event):
    from chalicelib.platform import schedules

    return schedules.minute()


@app.schedule(Cron(0, 19, "*", "*", "?", "*"))  # 03:00 Asia/Shanghai
def tick_daily(event):
    from chalicelib.platform import schedules

    return schedules.daily()
