"""kafka-python and the riffle command line on one topic (its first partition).

1. Reads the records `riffle produce` wrote (keys key-I, values value-I, header app=riffle)
   with an assign()ed KafkaConsumer from the beginning, and checks each.
2. Writes --count more records (key-I, value-I, header app=kafka-python, gzip) with an
   idempotent KafkaProducer, for `riffle consume` to read.
3. Asks for the topic's log directory with KafkaAdminClient.describe_log_dirs
   (DescribeLogDirs, as kafka-log-dirs.sh does) and checks the partition has bytes.
"""

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition

from common import CLIENT_TIMEOUT_S, check, parser


def main():
    arguments = parser(__doc__)
    arguments.add_argument('--topic', required=True)
    arguments.add_argument('--count', type=int, required=True)
    args = arguments.parse_args()
    read_riffle_records(args.bootstrap, args.topic, args.count)
    write_records(args.bootstrap, args.topic, args.count)
    check_log_dirs(args.bootstrap, args.topic)


def read_riffle_records(bootstrap, topic, count):
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, consumer_timeout_ms=CLIENT_TIMEOUT_S * 1000)
    partition = TopicPartition(topic, 0)
    consumer.assign([partition])
    consumer.seek_to_beginning(partition)
    records = []
    while len(records) < count:
        batch = consumer.poll(timeout_ms=CLIENT_TIMEOUT_S * 1000, max_records=count)
        check(batch, f'no records after {len(records)} of {count}')
        for partition_records in batch.values():
            records.extend(partition_records)
    for index, record in enumerate(records[:count]):
        check(record.key == f'key-{index}'.encode(), f'record {index} has key {record.key!r}')
        check(record.value == f'value-{index}'.encode(), f'record {index} has value {record.value!r}')
        check(record.headers == [('app', b'riffle')], f'record {index} has headers {record.headers}')
    consumer.close()
    print(f'kafka-python read the {count} records riffle produce wrote')


def write_records(bootstrap, topic, count):
    producer = KafkaProducer(bootstrap_servers=bootstrap, compression_type='gzip',
                             enable_idempotence=True)
    for index in range(count, 2 * count):
        producer.send(topic, key=f'key-{index}'.encode(), value=f'value-{index}'.encode(),
                      headers=[('app', b'kafka-python')], partition=0)
    producer.flush(timeout=CLIENT_TIMEOUT_S)
    producer.close()
    print(f'kafka-python wrote {count} records')


def check_log_dirs(bootstrap, topic):
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    described = admin.describe_log_dirs(topic_partitions={topic: [0]})
    admin.close()
    check(len(described) == 1, f'one broker expected: {described}')
    log_dirs = described[0]['log_dirs']
    check(len(log_dirs) == 1 and log_dirs[0]['error_code'] == 0, f'one log dir: {log_dirs}')
    topics = log_dirs[0]['topics']
    check([t['name'] for t in topics] == [topic], f'only the asked topic: {topics}')
    partitions = topics[0]['partitions']
    check(len(partitions) == 1 and partitions[0]['partition_size'] > 0,
          f'partition 0 with bytes: {partitions}')
    print(f"describe_log_dirs: {log_dirs[0]['log_dir']} holds {partitions[0]['partition_size']} bytes of {topic}-0")


if __name__ == '__main__':
    main()
