"""confluent-kafka (librdkafka) consumers that start somewhere other than the beginning.

--mode latest: after some messages exist, assign() at OFFSET_END; once the consumer has
resolved that offset (ListOffsets, latest) and is fetching, produce more: it must see exactly
the new ones, starting at the old high watermark.

--mode timestamp: messages carry CreateTimes one second apart; offsets_for_times() for a time
between two messages, for an exact message time and for a time after the last message, then
assign() at the returned offset: the first message returned is the first with a timestamp at
or after the target.
"""

import time

from confluent_kafka import OFFSET_END, TopicPartition

from common import (BASE_TIMESTAMP_MS, CLIENT_TIMEOUT_S, DeliveryReports, Statistics, check,
                    check_confluent_message, confluent_consumer, confluent_producer, consume,
                    create_topic, expect_no_more, expected_record, fail, flush_all,
                    index_of_key, parser)


def produce(bootstrap, topic, first_index, count, prefix):
    """Produces messages first_index .. first_index + count - 1 to partition 0, acks=all."""
    producer = confluent_producer(bootstrap, {'acks': 'all', 'linger.ms': 10})
    reports = DeliveryReports()
    for index in range(first_index, first_index + count):
        key, value, headers, timestamp_ms = expected_record(index, prefix)
        producer.produce(topic, value=value, key=key, partition=0, headers=headers,
                         timestamp=timestamp_ms, on_delivery=reports.callback(index))
        producer.poll(0)
    flush_all(producer, reports, count)
    print(f'produced messages {first_index}..{first_index + count - 1} ({prefix})')


def wait_until_fetching(consumer, statistics, topic):
    """Polls until librdkafka's statistics say partition 0 is fetching; returns next_offset.

    Producing before the OFFSET_END lookup finished could let the new messages count as old, so
    this waits on the client's own state rather than on a sleep. Any message seen now is an old
    one, which is a failure. A report can say 'active' a moment before librdkafka's fetcher
    moves next_offset to the resolved offset (it still shows the initial 0), so the answer is
    taken only when two consecutive reports agree.
    """
    deadline = time.monotonic() + CLIENT_TIMEOUT_S
    previous = None
    while time.monotonic() < deadline:
        message = consumer.poll(0.1)
        if message is not None and message.error() is None:
            fail(f'consumer assigned at OFFSET_END returned old message at offset '
                 f'{message.offset()}')
        report = statistics.latest
        partition = statistics.partition(topic, 0)
        if not (partition and partition.get('fetch_state') == 'active'
                and partition.get('next_offset', -1) >= 0):
            continue
        if previous is not None and previous[0] is not report \
                and previous[1] == partition['next_offset']:
            return partition['next_offset']
        if previous is None or previous[0] is not report:
            previous = (report, partition['next_offset'])
    fail(f'partition 0 never reached fetch_state active; last statistics: '
         f'{statistics.partition(topic, 0)}')


def latest(args):
    old_count, new_count = 100, 50
    create_topic(args.bootstrap, args.topic, 1)
    produce(args.bootstrap, args.topic, 0, old_count, 'old')
    statistics = Statistics()
    consumer = confluent_consumer(args.bootstrap, args.topic, {
        'statistics.interval.ms': 100, 'stats_cb': statistics.callback})
    consumer.assign([TopicPartition(args.topic, 0, OFFSET_END)])
    next_offset = wait_until_fetching(consumer, statistics, args.topic)
    check(next_offset == old_count,
          f'OFFSET_END resolved to {next_offset}, expected the high watermark {old_count}')
    produce(args.bootstrap, args.topic, old_count, new_count, 'new')
    messages = consume(consumer, new_count)
    for position, message in enumerate(messages):
        index = old_count + position
        check(message.offset() == index, f'new message {position} at offset {message.offset()}')
        check_confluent_message(message, index, 'new')
    expect_no_more(consumer)
    consumer.close()
    print(f'assigned at OFFSET_END ({next_offset}); saw exactly the {new_count} new messages')


def offset_for_time(consumer, topic, timestamp_ms):
    """offsets_for_times() for partition 0; fails on a per-partition error."""
    [result] = consumer.offsets_for_times([TopicPartition(topic, 0, timestamp_ms)],
                                          timeout=CLIENT_TIMEOUT_S)
    check(result.error is None, f'offsets_for_times({timestamp_ms}) error: {result.error}')
    return result.offset


def first_message_from(args, offset, target_ms, count):
    """Assigns at `offset` and checks the first message is the first at or after target_ms."""
    consumer = confluent_consumer(args.bootstrap, args.topic)
    consumer.assign([TopicPartition(args.topic, 0, offset)])
    messages = consume(consumer, count - offset)
    consumer.close()
    first = messages[0]
    index = index_of_key(first.key())
    timestamp_ms = first.timestamp()[1]
    check(timestamp_ms >= target_ms, f'first message time {timestamp_ms} < target {target_ms}')
    check(index == 0 or expected_record(index - 1)[3] < target_ms,
          f'message {index - 1} also has a time >= {target_ms}, so {index} is not the first')
    for position, message in enumerate(messages):
        check_confluent_message(message, index + position, 'timed')
    return index


def timestamp(args):
    count = 100
    create_topic(args.bootstrap, args.topic, 1)
    produce(args.bootstrap, args.topic, 0, count, 'timed')
    consumer = confluent_consumer(args.bootstrap, args.topic)
    between = BASE_TIMESTAMP_MS + 42 * 1000 - 500  # between messages 41 and 42
    exact = BASE_TIMESTAMP_MS + 60 * 1000  # message 60's own time
    after_last = BASE_TIMESTAMP_MS + count * 1000  # later than every message
    offsets = {target: offset_for_time(consumer, args.topic, target)
               for target in (between, exact, after_last)}
    consumer.close()
    check(offsets[between] == 42, f'offset for a time between 41 and 42: {offsets[between]}')
    check(offsets[exact] == 60, f'offset for message 60 exact time: {offsets[exact]}')
    check(offsets[after_last] == -1,
          f'offset for a time after the last message: {offsets[after_last]}, expected -1')
    for target in (between, exact):
        index = first_message_from(args, offsets[target], target, count)
        print(f'offsets_for_times({target}) -> {offsets[target]}; first message {index}')


def main():
    arguments = parser(__doc__)
    arguments.add_argument('--topic', required=True)
    arguments.add_argument('--mode', required=True, choices=['latest', 'timestamp'])
    args = arguments.parse_args()
    {'latest': latest, 'timestamp': timestamp}[args.mode](args)


if __name__ == '__main__':
    main()
