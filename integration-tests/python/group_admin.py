"""Group administration: confluent-kafka's AdminClient, kafka-python's KafkaAdminClient and
`riffle groups` agree with the state the consumers created.

Setup, on a 3-partition topic holding 10 messages per partition:
- admin-active: a confluent consumer (client.id admin-active-client) that consumed all 30,
  committed and stays in the group (Stable, one member owning all 3 partitions);
- admin-lagging: a confluent consumer that committed offset 10 on partition 0 and 4 on
  partition 1 (nothing on 2) and closed (Empty); left for the Rust test's CLI checks;
- admin-deletable (confluent) and admin-kp (kafka-python): consumed, committed and closed.

Then:
- confluent list_consumer_groups lists the groups with their states, and the STABLE filter
  lists only admin-active; describe_consumer_groups gives state, member, client id and the
  member's assignment; delete_consumer_groups fails with NON_EMPTY_GROUP for admin-active and
  deletes admin-deletable, whose offsets are gone afterwards;
- kafka-python list_groups / describe_groups / list_group_offsets / delete_groups do the same
  (kafka-python 3.0 names them so; there is no list_consumer_groups any more), and
  delete_group_offsets (OffsetDelete; confluent-kafka-python has no binding for it) deletes
  one partition's offset of admin-kp, refuses admin-active's subscribed topic with
  GROUP_SUBSCRIBED_TO_TOPIC while deleting its offset of a topic it does not subscribe to,
  and refuses an unknown group with GROUP_ID_NOT_FOUND;
- with --riffle, `riffle groups describe admin-active` shows each partition's committed
  offset 10, log end offset 10, lag 0 and the member, and `riffle groups list` the groups.
"""

import subprocess
import time

from confluent_kafka import (OFFSET_INVALID, ConsumerGroupState, KafkaError, KafkaException,
                             TopicPartition)
from confluent_kafka.admin import AdminClient
import kafka.errors as kafka_errors
from kafka import KafkaConsumer
from kafka import TopicPartition as KafkaTopicPartition
from kafka.admin import KafkaAdminClient

from common import (CLIENT_TIMEOUT_S, check, confluent_config, confluent_consumer, create_topic,
                    fail, parser)
from group_common import produce_indexed

PARTITIONS = 3
PER_PARTITION = 10
ACTIVE_CLIENT_ID = 'admin-active-client'


def confluent_group_consumer(args, group, client_id):
    """A subscribed confluent consumer that has read all messages; returns it still open."""
    consumer = confluent_consumer(args.bootstrap, args.topic, {
        'group.id': group, 'client.id': client_id, 'session.timeout.ms': 6000,
        'heartbeat.interval.ms': 1000, 'enable.auto.offset.store': True})
    consumer.subscribe([args.topic])
    read = 0
    deadline = time.monotonic() + CLIENT_TIMEOUT_S
    while read < PARTITIONS * PER_PARTITION and time.monotonic() < deadline:
        message = consumer.poll(0.5)
        if message is not None and message.error() is None:
            read += 1
    check(read == PARTITIONS * PER_PARTITION, f'{group}: read {read} messages')
    return consumer


def old_topic(args):
    return f'{args.topic}-old'


def set_up_groups(args):
    create_topic(args.bootstrap, args.topic, PARTITIONS)
    produce_indexed(args.bootstrap, args.topic, range(PARTITIONS * PER_PARTITION), PARTITIONS)
    active = confluent_group_consumer(args, 'admin-active', ACTIVE_CLIENT_ID)
    active.commit(asynchronous=False)
    # A topic the group read once and no longer subscribes to: OffsetDelete may clean it up.
    create_topic(args.bootstrap, old_topic(args), 1)
    active.commit(offsets=[TopicPartition(old_topic(args), 0, 5)], asynchronous=False)
    lagging = confluent_group_consumer(args, 'admin-lagging', 'admin-lagging-client')
    lagging.commit(offsets=[TopicPartition(args.topic, 0, 10), TopicPartition(args.topic, 1, 4)],
                   asynchronous=False)
    lagging.close()
    deletable = confluent_group_consumer(args, 'admin-deletable', 'admin-deletable-client')
    deletable.commit(asynchronous=False)
    deletable.close()
    kafka_python = KafkaConsumer(args.topic, bootstrap_servers=args.bootstrap, group_id='admin-kp',
                                 auto_offset_reset='earliest', enable_auto_commit=False,
                                 session_timeout_ms=6000, heartbeat_interval_ms=1000)
    read = 0
    deadline = time.monotonic() + CLIENT_TIMEOUT_S
    while read < PARTITIONS * PER_PARTITION and time.monotonic() < deadline:
        read += sum(len(batch) for batch in kafka_python.poll(timeout_ms=500).values())
    check(read == PARTITIONS * PER_PARTITION, f'admin-kp: read {read} messages')
    kafka_python.commit(timeout_ms=CLIENT_TIMEOUT_S * 1000)
    kafka_python.close()
    print('groups set up: admin-active (Stable), admin-lagging, admin-deletable, admin-kp (Empty)')
    return active


def confluent_listed(admin, **options):
    result = admin.list_consumer_groups(request_timeout=CLIENT_TIMEOUT_S, **options).result()
    check(not result.errors, f'list_consumer_groups errors: {result.errors}')
    return {listing.group_id: listing for listing in result.valid}


def check_confluent_admin(args, admin):
    listed = confluent_listed(admin)
    for group, state in [('admin-active', ConsumerGroupState.STABLE),
                         ('admin-lagging', ConsumerGroupState.EMPTY),
                         ('admin-deletable', ConsumerGroupState.EMPTY),
                         ('admin-kp', ConsumerGroupState.EMPTY)]:
        check(group in listed, f'list_consumer_groups lacks {group}: {sorted(listed)}')
        check(listed[group].state == state, f'{group} is {listed[group].state}, expected {state}')
        check(not listed[group].is_simple_consumer_group, f'{group} listed as a simple group')
    stable = confluent_listed(admin, states={ConsumerGroupState.STABLE})
    check(set(stable) == {'admin-active'}, f'STABLE filter listed {sorted(stable)}')

    futures = admin.describe_consumer_groups(['admin-active', 'admin-lagging'],
                                             request_timeout=CLIENT_TIMEOUT_S)
    active = futures['admin-active'].result()
    check(active.state == ConsumerGroupState.STABLE, f'admin-active described as {active.state}')
    check(len(active.members) == 1, f'admin-active has {len(active.members)} members')
    member = active.members[0]
    check(member.client_id == ACTIVE_CLIENT_ID, f'member client id {member.client_id}')
    assigned = sorted((tp.topic, tp.partition) for tp in member.assignment.topic_partitions)
    check(assigned == [(args.topic, partition) for partition in range(PARTITIONS)],
          f'admin-active member assignment {assigned}')
    lagging = futures['admin-lagging'].result()
    check(lagging.state == ConsumerGroupState.EMPTY and not lagging.members,
          f'admin-lagging described as {lagging.state} with {len(lagging.members)} members')

    not_empty = admin.delete_consumer_groups(['admin-active'], request_timeout=CLIENT_TIMEOUT_S)
    try:
        not_empty['admin-active'].result()
        fail('delete_consumer_groups deleted admin-active, which has a live member')
    except KafkaException as error:
        code = error.args[0].code()
        check(code == KafkaError.NON_EMPTY_GROUP, f'deleting admin-active failed with {error}, '
                                                  f'expected NON_EMPTY_GROUP')
    deleted = admin.delete_consumer_groups(['admin-deletable'], request_timeout=CLIENT_TIMEOUT_S)
    deleted['admin-deletable'].result()
    check('admin-deletable' not in confluent_listed(admin), 'admin-deletable still listed')
    consumer = confluent_consumer(args.bootstrap, args.topic, {'group.id': 'admin-deletable'})
    committed = consumer.committed([TopicPartition(args.topic, partition)
                                    for partition in range(PARTITIONS)], timeout=CLIENT_TIMEOUT_S)
    consumer.close()
    check(all(entry.offset == OFFSET_INVALID for entry in committed),
          f'admin-deletable still has offsets after deletion: {committed}')
    print('confluent-kafka: list, STABLE filter, describe, NON_EMPTY_GROUP, delete all correct')
    return member.member_id


def kafka_python_assignment(member):
    """The (topic, partition) pairs of a kafka-python describe_groups member."""
    assignment = member['member_assignment']
    check(isinstance(assignment, dict), f'kafka-python did not decode the assignment: {assignment!r}')
    return sorted((topic['topic'], partition) for topic in assignment['assigned_partitions']
                  for partition in topic['partitions'])


def check_kafka_python_admin(args):
    admin = KafkaAdminClient(bootstrap_servers=args.bootstrap,
                             request_timeout_ms=CLIENT_TIMEOUT_S * 1000)
    listed = {group['group_id']: group for group in admin.list_groups()}
    for group, state in [('admin-active', 'Stable'), ('admin-kp', 'Empty')]:
        check(group in listed, f'kafka-python list_groups lacks {group}: {sorted(listed)}')
        check(listed[group]['group_state'] == state and listed[group]['protocol_type'] == 'consumer',
              f'kafka-python lists {group} as {listed[group]}')
    stable = {group['group_id'] for group in admin.list_groups(states_filter=['Stable'])}
    check(stable == {'admin-active'}, f'kafka-python states_filter Stable listed {stable}')

    described = admin.describe_groups(['admin-active', 'admin-kp'])
    active = described['admin-active']
    check(active['error'] is None and active['group_state'] == 'Stable',
          f'kafka-python describes admin-active as {active}')
    check(len(active['members']) == 1 and active['members'][0]['client_id'] == ACTIVE_CLIENT_ID,
          f'kafka-python admin-active members {active["members"]}')
    check(kafka_python_assignment(active['members'][0])
          == [(args.topic, partition) for partition in range(PARTITIONS)],
          f'kafka-python admin-active assignment {active["members"][0]["member_assignment"]}')
    check(described['admin-kp']['group_state'] == 'Empty' and not described['admin-kp']['members'],
          f'kafka-python describes admin-kp as {described["admin-kp"]}')

    offsets = admin.list_group_offsets('admin-kp')['admin-kp']
    check({(tp.partition, entry.offset) for tp, entry in offsets.items()}
          == {(partition, PER_PARTITION) for partition in range(PARTITIONS)},
          f'kafka-python list_group_offsets admin-kp: {offsets}')

    check_kafka_python_delete_offsets(args, admin)

    results = admin.delete_groups(['admin-active'])
    check('NonEmptyGroup' in str(results.get('admin-active')),
          f'kafka-python delete_groups admin-active answered {results}, expected NonEmptyGroupError')
    results = admin.delete_groups(['admin-kp'])
    check(results == {'admin-kp': 'OK'}, f'kafka-python delete_groups admin-kp answered {results}')
    remaining = {group['group_id'] for group in admin.list_groups()}
    check('admin-kp' not in remaining, f'admin-kp still listed after deletion: {remaining}')
    admin.close()
    print('kafka-python: list_groups, states_filter, describe_groups, list_group_offsets, '
          'delete_groups all correct')


def check_kafka_python_delete_offsets(args, admin):
    """OffsetDelete through kafka-python: an empty group loses exactly the partition named; in
    a live group the member's topic is GROUP_SUBSCRIBED_TO_TOPIC while a topic it no longer
    subscribes to is deleted; an unknown group is GROUP_ID_NOT_FOUND."""
    first = KafkaTopicPartition(args.topic, 0)
    results = admin.delete_group_offsets('admin-kp', [first])
    check(results == {first: kafka_errors.NoError},
          f'kafka-python delete_group_offsets admin-kp answered {results}')
    offsets = admin.list_group_offsets('admin-kp')['admin-kp']
    check({tp.partition for tp in offsets} == set(range(1, PARTITIONS)),
          f'admin-kp offsets after deleting partition 0: {offsets}')
    old = KafkaTopicPartition(old_topic(args), 0)
    results = admin.delete_group_offsets('admin-active', [first, old])
    check(results == {first: kafka_errors.GroupSubscribedToTopicError, old: kafka_errors.NoError},
          f'kafka-python delete_group_offsets admin-active answered {results}')
    offsets = admin.list_group_offsets('admin-active')['admin-active']
    check({tp.topic for tp in offsets} == {args.topic},
          f'admin-active offsets after deleting {old_topic(args)}: {offsets}')
    try:
        admin.delete_group_offsets('no-such-group', [first])
        fail('delete_group_offsets of an unknown group succeeded')
    except kafka_errors.GroupIdNotFoundError:
        pass
    print('kafka-python: delete_group_offsets deletes, refuses a subscribed topic but deletes '
          'an unsubscribed one in a live group, and reports an unknown group')


def run_riffle(riffle, *args):
    finished = subprocess.run([riffle, 'groups', *args], capture_output=True, text=True,
                              timeout=CLIENT_TIMEOUT_S)
    check(finished.returncode == 0, f'riffle groups {args} exited {finished.returncode}: '
                                    f'{finished.stderr}')
    print(finished.stdout, end='')
    return [line.split() for line in finished.stdout.splitlines()[1:] if line.strip()]


def check_riffle_cli(args, member_id):
    rows = run_riffle(args.riffle, '--bootstrap', args.bootstrap, 'describe', 'admin-active')
    expected = [['admin-active', args.topic, str(partition), '10', '10', '0', member_id]
                for partition in range(PARTITIONS)]
    check([row[:7] for row in rows] == expected,
          f'riffle groups describe admin-active rows {rows}, expected {expected}')
    check(all(row[8] == ACTIVE_CLIENT_ID for row in rows), f'client ids in {rows}')
    listed = {row[0]: row[1:] for row in run_riffle(args.riffle, '--bootstrap', args.bootstrap,
                                                      'list')}
    check(listed.get('admin-active') == ['Stable', 'consumer'], f'riffle groups list: {listed}')
    check(listed.get('admin-lagging') == ['Empty', 'consumer'], f'riffle groups list: {listed}')
    print('riffle groups describe and list match the live group')


def main():
    arguments = parser(__doc__)
    arguments.add_argument('--topic', required=True)
    arguments.add_argument('--riffle', help='the riffle binary, to check `riffle groups` too')
    args = arguments.parse_args()
    active = set_up_groups(args)
    admin = AdminClient(confluent_config(args.bootstrap))
    member_id = check_confluent_admin(args, admin)
    check_kafka_python_admin(args)
    if args.riffle:
        check_riffle_cli(args, member_id)
    active.close()


if __name__ == '__main__':
    main()
