from portal.celery import app as celery_app


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
