"""confluent-kafka (librdkafka) over a secured listener; --mode picks what to prove.

roundtrip:     produce --count messages, consume them in group --group (subscribe), commit
               synchronously and read the committed offset back (OffsetFetch).
committed:     the committed offset of --group on --topic partition 0 must be --expect.
auth-failure:  the credentials are wrong: the client must report the broker's
               SASL_AUTHENTICATION_FAILED (librdkafka turns error 58 into its local
               _AUTHENTICATION error, "SASL authentication error: <broker message>") and get
               no metadata.
refused:       the connection must fail before any request (a TLS handshake the broker
               rejects): a _SSL or _TRANSPORT error, no metadata, no authentication error.
denied-produce: producing to --topic must fail with TOPIC_AUTHORIZATION_FAILED.
denied-group:  subscribing to --topic in --group must fail with GROUP_AUTHORIZATION_FAILED.
"""

import time

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition

from common import CLIENT_TIMEOUT_S, check, confluent_config, fail
from security_common import ErrorLog, Security, confluent_messages, security_parser, wait_for_error


def produce(bootstrap, security, topic, count):
    """Sends `count` messages to partition 0 and checks every delivery report."""
    errors = ErrorLog()
    producer = Producer(confluent_config(bootstrap, {
        **security.confluent(), **errors.settings(),
        'message.timeout.ms': CLIENT_TIMEOUT_S * 1000,
    }))
    reports = []
    for key, value in confluent_messages(count, topic):
        producer.produce(topic, key=key, value=value, partition=0,
                         on_delivery=lambda error, message: reports.append((error, message)))
    remaining = producer.flush(CLIENT_TIMEOUT_S + 5)
    check(remaining == 0, f'{remaining} messages still queued; errors: {errors.describe()}')
    failed = [str(error) for error, _ in reports if error is not None]
    check(not failed, f'{len(failed)} delivery errors, first {failed[:3]}')
    offsets = sorted(message.offset() for _, message in reports)
    print(f'produced {count} messages to {topic} over {security.describe()}, offsets '
          f'{offsets[0]}..{offsets[-1]}')


def consume_in_group(bootstrap, security, topic, group, count):
    """Subscribes in `group`, reads `count` messages, commits them and checks OffsetFetch."""
    consumer = Consumer(confluent_config(bootstrap, {
        **security.confluent(),
        'group.id': group,
        'auto.offset.reset': 'earliest',
        'enable.auto.commit': False,
        'session.timeout.ms': 10000,
    }))
    consumer.subscribe([topic])
    received = []
    errors = []
    deadline = time.monotonic() + CLIENT_TIMEOUT_S
    while len(received) < count and time.monotonic() < deadline:
        message = consumer.poll(0.5)
        if message is None:
            continue
        if message.error() is not None:
            errors.append(str(message.error()))
            continue
        received.append((message.key(), message.value()))
    check(len(received) == count,
          f'consumed {len(received)} of {count} in group {group}; errors {errors[-5:]}')
    check(sorted(received) == sorted(confluent_messages(count, topic)),
          f'consumed the wrong messages: {received[:3]}...')
    check(len(consumer.assignment()) == 1,
          f'assignment {consumer.assignment()} after joining {group}')
    committed = consumer.commit(asynchronous=False)
    check(committed[0].error is None and committed[0].offset == count,
          f'commit answered {committed}')
    fetched = consumer.committed([TopicPartition(topic, 0)], timeout=CLIENT_TIMEOUT_S)
    check(fetched[0].offset == count, f'OffsetFetch gives {fetched}, expected {count}')
    consumer.close()
    print(f'group {group} consumed {count} messages and committed offset {count}')


def committed(bootstrap, security, topic, group, expect):
    consumer = Consumer(confluent_config(bootstrap, {**security.confluent(), 'group.id': group}))
    fetched = consumer.committed([TopicPartition(topic, 0)], timeout=CLIENT_TIMEOUT_S)
    consumer.close()
    check(fetched[0].error is None and fetched[0].offset == expect,
          f'group {group} has committed {fetched}, expected offset {expect}')
    print(f'group {group} has committed offset {expect} on {topic}/0')


def metadata_fails(bootstrap, security):
    """Asks for metadata, which must fail; returns the librdkafka errors seen."""
    errors = ErrorLog()
    producer = Producer(confluent_config(bootstrap, {
        **security.confluent(), **errors.settings(),
        # One connection attempt at a time, so the broker sees a few refusals, not a storm.
        'reconnect.backoff.ms': 500,
    }))
    try:
        metadata = producer.list_topics(timeout=5)
        fail(f'got metadata over {security.describe()}: {sorted(metadata.topics)}')
    except KafkaException as exception:
        print(f'metadata refused: {exception}')
    return errors, producer


def auth_failure(bootstrap, security):
    errors, producer = metadata_fails(bootstrap, security)
    error = wait_for_error(
        errors, lambda e: e.code() == KafkaError._AUTHENTICATION, 'authentication error',
        poll=producer.poll)
    # librdkafka puts the broker's name first: "sasl_ssl://host:port/bootstrap: SASL ...".
    check('SASL authentication error: ' in error.str(),
          f'the authentication error is {error.str()!r}, expected librdkafka\'s wording for the '
          'broker\'s SASL_AUTHENTICATION_FAILED')
    print(f'refused as expected: {error.name()}: {error.str()}')


def refused(bootstrap, security):
    errors, producer = metadata_fails(bootstrap, security)
    wanted = (KafkaError._SSL, KafkaError._TRANSPORT)
    error = wait_for_error(errors, lambda e: e.code() in wanted, 'SSL or transport error',
                           poll=producer.poll)
    check(not any(e.code() == KafkaError._AUTHENTICATION for e in errors.errors),
          f'the refusal came as an authentication error: {errors.describe()}')
    print(f'connection refused as expected: {error.name()}: {error.str()}')


def denied_produce(bootstrap, security, topic):
    errors = ErrorLog()
    producer = Producer(confluent_config(bootstrap, {
        **security.confluent(), **errors.settings(), 'message.timeout.ms': 10000,
    }))
    reports = []
    producer.produce(topic, value=b'must not land',
                     on_delivery=lambda error, message: reports.append(error))
    producer.flush(CLIENT_TIMEOUT_S)
    check(len(reports) == 1 and reports[0] is not None, f'delivery reports {reports}')
    check(reports[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED,
          f'producing to {topic} failed with {reports[0]}, expected TOPIC_AUTHORIZATION_FAILED')
    print(f'producing to {topic} refused: {reports[0].name()}')


def denied_group(bootstrap, security, topic, group):
    consumer = Consumer(confluent_config(bootstrap, {
        **security.confluent(), 'group.id': group, 'auto.offset.reset': 'earliest',
    }))
    consumer.subscribe([topic])
    errors = []
    deadline = time.monotonic() + CLIENT_TIMEOUT_S
    while time.monotonic() < deadline:
        message = consumer.poll(0.5)
        if message is None:
            continue
        check(message.error() is not None,
              f'read {topic}/{message.partition()}@{message.offset()} in group {group}')
        errors.append(message.error())
        if message.error().code() == KafkaError.GROUP_AUTHORIZATION_FAILED:
            consumer.close()
            print(f'joining group {group} refused: {message.error().name()}')
            return
    fail(f'no GROUP_AUTHORIZATION_FAILED for group {group}; errors {[str(e) for e in errors]}')


def main():
    arguments = security_parser(__doc__)
    arguments.add_argument('--mode', required=True,
                           choices=['roundtrip', 'committed', 'auth-failure', 'refused',
                                    'denied-produce', 'denied-group'])
    arguments.add_argument('--topic', default='secure-confluent')
    arguments.add_argument('--group', default='secure-confluent-group')
    arguments.add_argument('--count', type=int, default=20)
    arguments.add_argument('--expect', type=int, default=None)
    args = arguments.parse_args()
    security = Security(args)
    if args.mode == 'roundtrip':
        produce(args.bootstrap, security, args.topic, args.count)
        consume_in_group(args.bootstrap, security, args.topic, args.group, args.count)
    elif args.mode == 'committed':
        committed(args.bootstrap, security, args.topic, args.group, args.expect)
    elif args.mode == 'auth-failure':
        auth_failure(args.bootstrap, security)
    elif args.mode == 'refused':
        refused(args.bootstrap, security)
    elif args.mode == 'denied-produce':
        denied_produce(args.bootstrap, security, args.topic)
    else:
        denied_group(args.bootstrap, security, args.topic, args.group)


if __name__ == '__main__':
    main()
