"""Helpers shared by the transaction scripts (txn_*.py): transactional producers, reading a
partition as a consumer of a given isolation level sees it, and a watchdog.

Kafka's behaviour is the spec: a committed or aborted transaction ends with one control record
per partition it wrote to, which takes an offset but is never handed to the application.
"""

import faulthandler
import time

from common import CLIENT_TIMEOUT_S, check, confluent_config

# A transaction script that runs longer than this dumps every thread's stack and exits 1, well
# before the Rust harness would kill it (PYTHON_TIMEOUT, 120 s): kafka-python's
# commit_transaction() and abort_transaction() take no timeout.
SCRIPT_DEADLINE_S = 90


def start_watchdog(seconds=SCRIPT_DEADLINE_S):
    """Exits the script with its stack traces if it is still running after `seconds`."""
    faulthandler.dump_traceback_later(seconds, exit=True)


def transactional_producer(bootstrap, transactional_id, timeout_ms=60000, settings=None):
    """A confluent-kafka Producer with transactional.id; init_transactions() not yet called.

    librdkafka wants socket.timeout.ms and message.timeout.ms below transaction.timeout.ms,
    so both are lowered to fit a short transaction timeout."""
    from confluent_kafka import Producer
    config = confluent_config(bootstrap, {
        'transactional.id': transactional_id,
        'transaction.timeout.ms': timeout_ms,
        'socket.timeout.ms': max(100, min(CLIENT_TIMEOUT_S * 1000, timeout_ms - 100)),
        'message.timeout.ms': min(CLIENT_TIMEOUT_S * 1000, timeout_ms),
    })
    config.update(settings or {})
    return Producer(config)


def produce_values(producer, topic, partition, values):
    """Queues each string of `values` for topic/partition (confluent-kafka)."""
    for value in values:
        producer.produce(topic, value=value.encode(), partition=partition)
        producer.poll(0)


def flush(producer):
    """Flushes a confluent-kafka producer and checks nothing is left queued."""
    remaining = producer.flush(CLIENT_TIMEOUT_S)
    check(remaining == 0, f'{remaining} messages still queued after flush')


def labelled(label, count, first_offset=None):
    """['label-0', 'label-1', ...], or [(offset, 'label-0'), ...] from first_offset on."""
    values = [f'{label}-{index}' for index in range(count)]
    if first_offset is None:
        return values
    return list(zip(range(first_offset, first_offset + count), values))


def confluent_reader(bootstrap, topic, partition, isolation, group=None):
    """A confluent-kafka Consumer assigned to topic/partition from the start; `isolation` is
    'read_committed', 'read_uncommitted', or None to keep librdkafka's default."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
    settings = {
        'group.id': group or f'riffle-it-{topic}-{isolation or "default"}',
        'enable.auto.commit': False,
        'enable.auto.offset.store': False,
        'auto.offset.reset': 'earliest',
    }
    if isolation is not None:
        settings['isolation.level'] = isolation
    consumer = Consumer(confluent_config(bootstrap, settings))
    consumer.assign([TopicPartition(topic, partition, OFFSET_BEGINNING)])
    return consumer


def end_offset(consumer, topic, partition):
    """The latest offset ListOffsets answers at the consumer's isolation level (librdkafka asks
    with its isolation.level): the last stable offset for read_committed, else the high
    watermark."""
    from confluent_kafka import TopicPartition
    _, high = consumer.get_watermark_offsets(TopicPartition(topic, partition),
                                             timeout=CLIENT_TIMEOUT_S, cached=False)
    return high


def position(consumer, topic, partition):
    """The consumer's position: the offset after the last record or control record it read."""
    from confluent_kafka import TopicPartition
    return consumer.position([TopicPartition(topic, partition)])[0].offset


def poll_until_position(consumer, topic, partition, end, timeout_s=CLIENT_TIMEOUT_S):
    """Polls until the position reaches `end`; returns [(offset, value)] of what arrived."""
    deadline = time.monotonic() + timeout_s
    messages = []
    errors = []
    while end > 0 and position(consumer, topic, partition) < end:
        check(time.monotonic() < deadline,
              f'{topic}/{partition}: position {position(consumer, topic, partition)} after '
              f'{timeout_s}s, expected {end}; got {len(messages)} messages, errors {errors[-3:]}')
        message = consumer.poll(0.1)
        if message is None:
            continue
        if message.error() is not None:
            errors.append(str(message.error()))
            continue
        messages.append((message.offset(), message.value().decode()))
    return messages


def poll_for(consumer, seconds):
    """[(offset, value)] of every message that arrives within `seconds`."""
    deadline = time.monotonic() + seconds
    messages = []
    while time.monotonic() < deadline:
        message = consumer.poll(0.1)
        if message is not None and message.error() is None:
            messages.append((message.offset(), message.value().decode()))
    return messages


def read_visible(bootstrap, topic, partition, isolation):
    """What a confluent-kafka consumer with `isolation` reads from the start: up to the end
    offset ListOffsets gives at that level, then half a second more so a record that should
    not be visible has its chance. Returns ([(offset, value)], end)."""
    consumer = confluent_reader(bootstrap, topic, partition, isolation)
    end = end_offset(consumer, topic, partition)
    messages = poll_until_position(consumer, topic, partition, end)
    messages += poll_for(consumer, 0.5)
    consumer.close()
    return messages, end


def expect_view(bootstrap, topic, partition, isolation, expected, expected_end):
    """Checks read_visible() against [(offset, value)] and the end offset."""
    messages, end = read_visible(bootstrap, topic, partition, isolation)
    name = isolation or 'default (librdkafka: read_committed)'
    check(end == expected_end,
          f'{topic}/{partition}: ListOffsets as a {name} consumer answered {end}, '
          f'expected {expected_end}')
    check(messages == expected,
          f'{topic}/{partition} as a {name} consumer: got {messages}, expected {expected}')
    print(f'{topic}/{partition} as a {name} consumer: {len(messages)} records, end {end}')


def kafka_error(exception):
    """The confluent_kafka.KafkaError inside a KafkaException."""
    return exception.args[0]
