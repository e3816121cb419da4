"""The issue's quickstart with kafka-python 3.0, written as a user would write it.

KafkaProducer with its defaults (idempotent, acks=all) sends --count messages with keys,
values, headers and explicit timestamps to an auto-created topic and flushes; then
`for message in KafkaConsumer(topic, ...)` (no group: every partition is assigned locally)
must return every message exactly once, in order within its partition, intact.
"""

from collections import defaultdict

from kafka import KafkaConsumer, KafkaProducer

from common import CLIENT_TIMEOUT_S, check, expected_record, index_of_key, parser


def produce(bootstrap, topic, count):
    """Sends `count` messages; returns {index: (partition, offset)} from the acknowledgements."""
    producer = KafkaProducer(
        bootstrap_servers=bootstrap,
        # Only timeouts differ from the defaults, so a broken broker fails fast.
        max_block_ms=CLIENT_TIMEOUT_S * 1000,
        request_timeout_ms=15000,
        delivery_timeout_ms=CLIENT_TIMEOUT_S * 1000,
    )
    check(producer.config['enable_idempotence'],
          'kafka-python disabled idempotence: it judged the broker older than 0.11 from '
          'its ApiVersions answer')
    check(producer.config['acks'] == -1, f"acks is {producer.config['acks']}, expected all (-1)")
    futures = []
    for index in range(count):
        key, value, headers, timestamp_ms = expected_record(index, 'quickstart')
        futures.append(producer.send(topic, key=key, value=value, headers=headers,
                                     timestamp_ms=timestamp_ms))
    producer.flush(timeout=CLIENT_TIMEOUT_S)
    acknowledged = {}
    for index, future in enumerate(futures):
        metadata = future.get(timeout=CLIENT_TIMEOUT_S)
        acknowledged[index] = (metadata.partition, metadata.offset)
    producer_id = producer._transaction_manager.producer_id_and_epoch.producer_id
    check(producer_id >= 0, f'no producer id after flush (InitProducerId): {producer_id}')
    producer.close(timeout=10)
    print(f'produced {count} messages to {topic} with idempotent producer id {producer_id}')
    return acknowledged


def consume(bootstrap, topic):
    """The issue's consumer loop, verbatim apart from collecting instead of printing."""
    received = []
    for message in KafkaConsumer(topic, bootstrap_servers=bootstrap,
                                 auto_offset_reset='earliest', consumer_timeout_ms=10000):
        received.append(message)
    return received


def verify(received, acknowledged, count, topic):
    """Every acknowledged message exactly once, in order per partition, intact."""
    check(len(received) == count, f'consumed {len(received)} messages, expected {count}')
    by_partition = defaultdict(list)
    for message in received:
        check(message.topic == topic, f'message from topic {message.topic}')
        index = index_of_key(message.key)
        key, value, headers, timestamp_ms = expected_record(index, 'quickstart')
        where = f'message {index} at {message.partition}/{message.offset}'
        check(message.value == value, f'{where}: value {message.value!r}, expected {value!r}')
        check(message.headers == headers, f'{where}: headers {message.headers!r}')
        check(message.timestamp == timestamp_ms and message.timestamp_type == 0,
              f'{where}: timestamp {message.timestamp} type {message.timestamp_type}, '
              f'expected CreateTime {timestamp_ms}')
        check(acknowledged[index] == (message.partition, message.offset),
              f'{where}: the producer was told {acknowledged[index]}')
        by_partition[message.partition].append((message.offset, index))
    for partition, entries in sorted(by_partition.items()):
        offsets = [offset for offset, _ in entries]
        indexes = [index for _, index in entries]
        check(offsets == list(range(len(offsets))),
              f'partition {partition}: offsets {offsets[:10]}... are not 0, 1, 2, ...')
        check(indexes == sorted(indexes),
              f'partition {partition}: messages out of send order: {indexes[:10]}...')
    check(sorted(index_of_key(m.key) for m in received) == list(range(count)),
          'some message is missing or duplicated')
    sizes = {partition: len(entries) for partition, entries in sorted(by_partition.items())}
    print(f'consumed {count} messages, in order per partition {sizes}')


def main():
    arguments = parser(__doc__)
    arguments.add_argument('--topic', default='topic_name')
    arguments.add_argument('--count', type=int, default=1000)
    args = arguments.parse_args()
    acknowledged = produce(args.bootstrap, args.topic, args.count)
    received = consume(args.bootstrap, args.topic)
    verify(received, acknowledged, args.count, args.topic)


if __name__ == '__main__':
    main()
