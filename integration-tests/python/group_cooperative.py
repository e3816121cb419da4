"""confluent-kafka with partition.assignment.strategy=cooperative-sticky: a third member joins
two that are consuming a 6-partition topic while messages keep arriving.

With the cooperative protocol (KIP-429) a rebalance revokes only the partitions that move, so
the assertions are about the on_assign / on_revoke callbacks each member reported:
- replaying each member's callbacks, a partition is only assigned when not owned and only
  revoked when owned (the callbacks are incremental);
- after the third member joins, the first two end up with a subset of what they had, lose
  only partitions that they do not own at the end (nothing is revoked from a member that
  keeps it), and keep at least one each;
- the third member gets exactly the partitions the other two gave up;
- every produced message is consumed at least once; a message consumed twice is on a
  partition that moved (the uncommitted tail of the previous owner).
"""

import threading
import time
from collections import Counter

from common import DeliveryReports, check, confluent_producer, create_topic, fail, parser
from group_common import (Member, consumed_union, index_of_message_key, message_key, settled,
                          wait_until)

PARTITIONS = 6
REBALANCE_TIMEOUT_S = 30
# Messages per burst and time between bursts of the steady producer.
BURST_COUNT = 12
BURST_INTERVAL_S = 0.1


class SteadyProducer:
    """Produces message bursts on a thread until stopped; message i goes to partition i % 6."""

    def __init__(self, bootstrap, topic):
        self.topic = topic
        self.producer = confluent_producer(bootstrap, {'acks': 'all', 'linger.ms': 5})
        self.reports = DeliveryReports()
        self.sent_count = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            for _ in range(BURST_COUNT):
                index = self.sent_count
                self.producer.produce(self.topic, key=message_key(index),
                                      value=f'value-{index}'.encode(),
                                      partition=index % PARTITIONS,
                                      on_delivery=self.reports.callback(index))
                self.sent_count += 1
            self.producer.poll(0)
            self._stop.wait(BURST_INTERVAL_S)

    def stop(self):
        """Stops, flushes and returns {index: (partition, offset)} of every message."""
        self._stop.set()
        self._thread.join(timeout=10)
        remaining = self.producer.flush(30)
        check(remaining == 0, f'{remaining} messages still queued after flush')
        check(not self.reports.errors, f'delivery errors: {self.reports.errors[:3]}')
        check(len(self.reports.delivered) == self.sent_count,
              f'{len(self.reports.delivered)} of {self.sent_count} messages delivered')
        return self.reports.delivered


def start_member(args, name):
    return Member(args.bootstrap, name, 'confluent', args.topic, args.group,
                  ['--assignor', 'cooperative-sticky', '--session-timeout-ms', '6000',
                   '--heartbeat-interval-ms', '1000'])


def check_incremental(member):
    """Replays a member's callbacks: assign only unowned partitions, revoke only owned ones."""
    owned = set()
    for event in member.events():
        partitions = set(event.get('partitions', []))
        if event['event'] == 'assigned':
            check(not partitions & owned, f'{member.name} was assigned {sorted(partitions)} while '
                                          f'owning {sorted(owned)}: not incremental')
            owned |= partitions
        elif event['event'] in ('revoked', 'lost'):
            check(event['event'] == 'revoked', f'{member.name} lost partitions: {event}')
            check(partitions <= owned, f'{member.name} had {sorted(partitions)} revoked while '
                                       f'owning {sorted(owned)}')
            owned -= partitions


def check_join(first_two, joiner, before, joined_at):
    given_up = set()
    for member in first_two:
        revoked = {partition for event in member.events('revoked', since=joined_at)
                   for partition in event['partitions']}
        final = member.owned()
        check(not revoked & final, f'{member.name} had {sorted(revoked & final)} revoked although '
                                   f'it owns them at the end (eager, not cooperative)')
        check(final <= before[member.name],
              f'{member.name} owns {sorted(final)}, more than before the join '
              f'{sorted(before[member.name])}')
        check(final, f'{member.name} kept no partition')
        check(revoked == before[member.name] - final,
              f'{member.name} had {sorted(revoked)} revoked, but gave up '
              f'{sorted(before[member.name] - final)}')
        given_up |= revoked
        print(f'{member.name}: {sorted(before[member.name])} -> {sorted(final)}, '
              f'revoked only {sorted(revoked)}')
    check(joiner.owned() == given_up,
          f'{joiner.name} owns {sorted(joiner.owned())}, the others gave up {sorted(given_up)}')
    return given_up


def check_no_loss(members, produced, moved):
    records = consumed_union(members)
    consumed = Counter(index_of_message_key(key) for _, _, key, _ in records)
    missing = sorted(set(produced) - set(consumed))
    check(not missing, f'{len(missing)} messages never consumed, e.g. {missing[:10]}')
    for index, count in consumed.items():
        if count > 1:
            partition = produced[index][0]
            check(partition in moved, f'message {index} consumed {count} times on partition '
                                      f'{partition}, which did not move')
    duplicates = sum(count - 1 for count in consumed.values())
    print(f'{len(produced)} messages consumed, {duplicates} duplicates (all on moved partitions)')


def main():
    arguments = parser(__doc__)
    arguments.add_argument('--topic', required=True)
    arguments.add_argument('--group', required=True)
    args = arguments.parse_args()
    create_topic(args.bootstrap, args.topic, PARTITIONS)
    producer = SteadyProducer(args.bootstrap, args.topic)
    first_two = [start_member(args, 'member-0'), start_member(args, 'member-1')]
    wait_until(settled(first_two, PARTITIONS, [3, 3]), REBALANCE_TIMEOUT_S,
               'assignment of 3 partitions to each of 2 members', first_two)
    wait_until(lambda: all(member.consumed() for member in first_two), REBALANCE_TIMEOUT_S,
               'both members consuming', first_two)
    before = {member.name: member.owned() for member in first_two}
    print(f'2 members consuming: {before}')
    joined_at = time.monotonic()
    joiner = start_member(args, 'member-2')
    members = first_two + [joiner]
    took = wait_until(settled(members, PARTITIONS, [2, 2, 2]), REBALANCE_TIMEOUT_S,
                      'assignment of 2 partitions to each of 3 members', members)
    print(f'member-2 joined; settled in {took:.1f}s')
    wait_until(lambda: joiner.consumed(), REBALANCE_TIMEOUT_S, 'member-2 consuming', members)
    produced = producer.stop()
    wait_until(lambda: set(produced) <= {index_of_message_key(key)
                                         for _, _, key, _ in consumed_union(members)},
               REBALANCE_TIMEOUT_S, f'all {len(produced)} messages consumed', members)
    for member in members:
        check_incremental(member)
    moved = check_join(first_two, joiner, before, joined_at)
    check_no_loss(members, produced, moved)
    for member in members:
        member.stop()
    fatal = [event for member in members for event in member.events('consumer_error')
             if event['fatal']]
    if fatal:
        fail(f'fatal consumer errors: {fatal}')


if __name__ == '__main__':
    main()
