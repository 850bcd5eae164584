import uuid

import pytest
from kombu import Connection, Exchange, Queue

from portal.celery import app as celery_app
from portal.kernel import queues


def test_celery_configuration_is_json_only_late_ack_prefetch_one():
    conf = celery_app.conf

    assert conf.task_serializer == "json"
    assert conf.accept_content == ["json"]
    assert conf.task_acks_late is True
    assert conf.task_reject_on_worker_lost is True
    assert conf.worker_prefetch_multiplier == 1
    assert [q.name for q in conf.task_queues] == ["express", "regular", "devices"]
    assert conf.task_default_queue == "regular"
    assert conf.beat_scheduler == "django_celery_beat.schedulers:DatabaseScheduler"


@pytest.mark.redis
def test_a_consumer_of_both_queues_takes_every_express_message_before_the_next_regular_one(redis_url):
    """The production broker's queue order (``queues.ORDER``, in the settings' Redis transport options): with a
    REGULAR backlog queued first, EXPRESS messages published after it are taken first. (kombu's default order
    alternates the queues: the test fails with it.)"""
    assert sorted([queues.REGULAR, queues.EXPRESS]) == [queues.EXPRESS, queues.REGULAR]
    prefix = f"order-{uuid.uuid4().hex[:8]}-"  # the names keep their order: prefix + express < prefix + regular
    express, regular = (Queue(prefix + n, Exchange(prefix + n), routing_key=prefix + n) for n in ("express", "regular"))
    taken: list[str] = []
    with Connection(redis_url, transport_options={"queue_order_strategy": queues.ORDER}) as conn:
        producer = conn.Producer()
        for n in range(4):
            producer.publish({"n": n}, exchange=regular.exchange, routing_key=regular.routing_key, declare=[regular])
        for n in range(3):
            producer.publish({"n": n}, exchange=express.exchange, routing_key=express.routing_key, declare=[express])

        def take(body, message):
            taken.append(message.delivery_info["routing_key"].removeprefix(prefix))
            message.ack()

        with conn.Consumer([regular, express], callbacks=[take], prefetch_count=1):
            while len(taken) < 7:
                conn.drain_events(timeout=5)
        for queue in (express, regular):
            queue(conn.default_channel).delete()

    assert taken == ["express"] * 3 + ["regular"] * 4
