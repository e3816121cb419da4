"""confluent-kafka (librdkafka): a topic created with several partitions by the AdminClient,
keyed messages spread by the default partitioner, every partition read back in order.
"""

from collections import defaultdict

from confluent_kafka import OFFSET_BEGINNING, TopicPartition

from common import (DeliveryReports, check, confluent_consumer, confluent_producer, consume,
                    create_topic, expect_no_more, expected_record, flush_all, parser)

# Message i has key "key-i"; fold the keys onto this many distinct values so each key is used
# several times and must always land on the same partition.
DISTINCT_KEYS = 40


def key_of(index):
    return f'key-{index % DISTINCT_KEYS}'.encode()


def produce(args):
    producer = confluent_producer(args.bootstrap, {'acks': 'all', 'linger.ms': 10})
    reports = DeliveryReports()
    for index in range(args.count):
        _, value, headers, timestamp_ms = expected_record(index)
        producer.produce(args.topic, value=value, key=key_of(index), headers=headers,
                         timestamp=timestamp_ms, on_delivery=reports.callback(index))
        producer.poll(0)
    flush_all(producer, reports, args.count)
    return reports.delivered


def check_spread(delivered, partitions):
    """Every partition got messages, and one key always went to one partition."""
    partition_of_key = {}
    for index, (partition, _) in delivered.items():
        key = key_of(index)
        check(partition_of_key.setdefault(key, partition) == partition,
              f'key {key!r} went to partitions {partition_of_key[key]} and {partition}')
    used = sorted(set(partition for partition, _ in delivered.values()))
    check(used == list(range(partitions)), f'messages only reached partitions {used}')


def read_back(args, delivered):
    """Each partition holds exactly its acknowledged messages, in produce order."""
    expected = defaultdict(list)  # partition -> [(offset, index)] from the delivery reports
    for index in range(args.count):
        partition, offset = delivered[index]
        expected[partition].append((offset, index))
    consumer = confluent_consumer(args.bootstrap, args.topic)
    consumer.assign([TopicPartition(args.topic, partition, OFFSET_BEGINNING)
                     for partition in range(args.partitions)])
    received = defaultdict(list)
    for message in consume(consumer, args.count):
        index = int(message.value().split(b'-')[1])
        check(message.key() == key_of(index), f'message {index} has key {message.key()!r}')
        _, value, headers, _ = expected_record(index)
        check(message.value() == value, f'message {index} value {message.value()!r}')
        check(message.headers() == headers, f'message {index} headers {message.headers()!r}')
        received[message.partition()].append((message.offset(), index))
    expect_no_more(consumer)
    consumer.close()
    for partition in range(args.partitions):
        check(received[partition] == expected[partition],
              f'partition {partition}: read {received[partition][:5]}..., acknowledged '
              f'{expected[partition][:5]}...')
        offsets = [offset for offset, _ in received[partition]]
        check(offsets == list(range(len(offsets))), f'partition {partition} offsets {offsets[:5]}')
    sizes = {partition: len(received[partition]) for partition in range(args.partitions)}
    print(f'read back {args.count} messages over {args.partitions} partitions {sizes}')


def main():
    arguments = parser(__doc__)
    arguments.add_argument('--topic', required=True)
    arguments.add_argument('--partitions', type=int, default=4)
    arguments.add_argument('--count', type=int, default=400)
    args = arguments.parse_args()
    create_topic(args.bootstrap, args.topic, args.partitions)
    delivered = produce(args)
    check_spread(delivered, args.partitions)
    read_back(args, delivered)


if __name__ == '__main__':
    main()
