"""Three kafka-python 3.0 consumers in one group share a 6-partition topic; every message is
consumed exactly once across them, through a graceful leave and a crash.

1. 300 messages are produced, three members (each its own process, range assignor,
   session.timeout.ms 6000, heartbeats every second) join and settle on 2 partitions each;
   300 more are produced while they run. Members commit synchronously before reporting, so
   the union of their reports must be exactly messages 0..599: no duplicate, no gap.
2. One member gets SIGTERM: close() sends LeaveGroup, so its partitions move to the other two
   well before its session could have expired; 120 new messages, including on the moved
   partitions, are consumed by the two survivors.
3. One survivor is SIGKILLed (no LeaveGroup). Its partitions move to the last member only
   once the coordinator expires its session (about session.timeout.ms after its last
   heartbeat), and 120 more messages are consumed by the last member.
"""

from collections import Counter, defaultdict

from common import check, create_topic, parser
from group_common import (Member, consumed_union, index_of_message_key, produce_indexed,
                          settled, wait_until)

PARTITIONS = 6
SESSION_TIMEOUT_MS = 6000
HEARTBEAT_INTERVAL_MS = 1000
# Longest wait for a rebalance that needs no session expiry.
REBALANCE_TIMEOUT_S = 30


def start_member(args, name):
    return Member(args.bootstrap, name, 'kafka-python', args.topic, args.group,
                  ['--session-timeout-ms', str(SESSION_TIMEOUT_MS),
                   '--heartbeat-interval-ms', str(HEARTBEAT_INTERVAL_MS)])


def wait_consumed(members, all_members, count, what):
    """Waits until the members together reported `count` records."""
    wait_until(lambda: len(consumed_union(all_members)) >= count, REBALANCE_TIMEOUT_S,
               f'{count} messages consumed ({what})', members)


def check_exactly_once(all_members, produced):
    """The union of reports holds each produced message exactly once, at the offset its
    delivery report gave, and per partition the offsets have no gap."""
    records = consumed_union(all_members)
    keys = Counter(key for _, _, key, _ in records)
    duplicates = {key: count for key, count in keys.items() if count > 1}
    check(not duplicates, f'{len(duplicates)} messages consumed more than once, e.g. '
                          f'{sorted(duplicates.items())[:5]}')
    consumed_indexes = {index_of_message_key(key) for key in keys}
    missing = sorted(set(produced) - consumed_indexes)
    check(not missing, f'{len(missing)} produced messages never consumed, e.g. {missing[:10]}')
    extra = sorted(consumed_indexes - set(produced))
    check(not extra, f'consumed messages that were never produced: {extra[:10]}')
    offsets = defaultdict(list)
    for partition, offset, key, _ in records:
        check(produced[index_of_message_key(key)] == (partition, offset),
              f'{key} consumed at {partition}/{offset}, produced at '
              f'{produced[index_of_message_key(key)]}')
        offsets[partition].append(offset)
    for partition, seen in offsets.items():
        check(sorted(seen) == list(range(len(seen))),
              f'partition {partition}: consumed offsets are not 0..{len(seen) - 1}')


def phase_join(args, produced):
    produced.update(produce_indexed(args.bootstrap, args.topic, range(0, 300), PARTITIONS))
    members = [start_member(args, f'member-{number}') for number in range(3)]
    took = wait_until(settled(members, PARTITIONS, [2, 2, 2]), REBALANCE_TIMEOUT_S,
                      'assignment of 2 partitions to each of 3 members', members)
    print(f'3 members settled in {took:.1f}s: '
          + ', '.join(f'{member.name} {sorted(member.owned())}' for member in members))
    produced.update(produce_indexed(args.bootstrap, args.topic, range(300, 600), PARTITIONS))
    wait_consumed(members, members, 600, 'while three members run')
    check_exactly_once(members, produced)
    print('600 messages consumed exactly once by 3 members')
    return members


def phase_leave(args, produced, members):
    leaving, survivors = members[0], members[1:]
    moved = leaving.owned()
    leaving.stop()
    took = wait_until(settled(survivors, PARTITIONS, [3, 3]), REBALANCE_TIMEOUT_S,
                      f'partitions of {leaving.name} moving after its LeaveGroup', survivors)
    check(took < SESSION_TIMEOUT_MS / 1000,
          f'partitions moved {took:.1f}s after close(), not before the session timeout '
          f'({SESSION_TIMEOUT_MS} ms): the LeaveGroup did not take effect')
    print(f'{leaving.name} closed; its partitions {sorted(moved)} moved in {took:.1f}s')
    produced.update(produce_indexed(args.bootstrap, args.topic, range(600, 720), PARTITIONS))
    wait_consumed(survivors, members, 720, f'after {leaving.name} left')
    check_exactly_once(members, produced)
    moved_consumers = {(partition, name) for partition, offset, key, name in consumed_union(members)
                       if partition in moved and index_of_message_key(key) >= 600}
    for partition in moved:
        owners = {name for moved_partition, name in moved_consumers if moved_partition == partition}
        check(owners and leaving.name not in owners,
              f'new messages on moved partition {partition} were consumed by {owners}')
    print('120 new messages consumed exactly once, the moved partitions by the survivors')
    return survivors


def phase_kill(args, produced, members, survivors):
    killed, last = survivors
    moved = killed.owned()
    killed.kill()
    took = wait_until(settled([last], PARTITIONS, [PARTITIONS]),
                      SESSION_TIMEOUT_MS / 1000 + REBALANCE_TIMEOUT_S,
                      f'partitions of the killed {killed.name} moving to {last.name}', [last])
    # The killed member's last heartbeat was at most one interval before the kill, so the
    # coordinator cannot have expired its session earlier than this.
    earliest_s = (SESSION_TIMEOUT_MS - HEARTBEAT_INTERVAL_MS) / 1000 - 0.5
    check(took >= earliest_s,
          f'partitions of the killed member moved after {took:.1f}s, before its session '
          f'({SESSION_TIMEOUT_MS} ms) could have expired')
    print(f'{killed.name} killed; its partitions {sorted(moved)} moved after {took:.1f}s')
    produced.update(produce_indexed(args.bootstrap, args.topic, range(720, 840), PARTITIONS))
    wait_consumed([last], members, 840, f'after {killed.name} was killed')
    check_exactly_once(members, produced)
    last.stop()
    print('840 messages consumed exactly once in all')


def main():
    arguments = parser(__doc__)
    arguments.add_argument('--topic', required=True)
    arguments.add_argument('--group', required=True)
    args = arguments.parse_args()
    create_topic(args.bootstrap, args.topic, PARTITIONS)
    produced = {}
    members = phase_join(args, produced)
    survivors = phase_leave(args, produced, members)
    phase_kill(args, produced, members, survivors)


if __name__ == '__main__':
    main()
