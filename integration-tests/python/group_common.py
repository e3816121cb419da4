"""Helpers for the consumer-group orchestrators: member processes, bounded waits, producing.

Each member runs group_worker.py in its own process (so a kill is a real SIGKILL of a real
client) and reports JSON events on its stdout; a thread here collects them. Every wait is
bounded and fails with what each member last reported. Members are killed when the
orchestrator exits, whatever happens.
"""

import atexit
import json
import os
import signal
import subprocess
import sys
import threading
import time

from common import DeliveryReports, check, confluent_producer, fail, flush_all

WORKER_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'group_worker.py')

# How long a member may take to exit after SIGTERM (close() includes LeaveGroup).
EXIT_TIMEOUT_S = 20

# How many of a member's last events a failure message shows.
EVENTS_SHOWN = 8

_all_members = []


def _kill_all_members():
    for member in _all_members:
        if member.process.poll() is None:
            member.process.kill()
            member.process.wait()


atexit.register(_kill_all_members)


class Member:
    """One group_worker.py process and the events it reported so far."""

    def __init__(self, bootstrap, name, client, topic, group, extra_args=()):
        self.name = name
        command = [sys.executable, WORKER_SCRIPT, '--bootstrap', bootstrap, '--client', client,
                   '--topic', topic, '--group', group, '--client-id', name, *extra_args]
        # stderr is inherited: the members' warnings show in the test's failure output.
        self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL,
                                        stdout=subprocess.PIPE, text=True)
        self._events = []
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        _all_members.append(self)

    def _read(self):
        for line in self.process.stdout:
            try:
                event = json.loads(line)
            except ValueError:
                event = {'event': 'output', 'text': line.rstrip(), 't': time.monotonic()}
            with self._lock:
                self._events.append(event)

    def events(self, kind=None, since=None):
        """The events reported so far, optionally only one kind and only after `since`."""
        with self._lock:
            events = list(self._events)
        return [event for event in events
                if (kind is None or event['event'] == kind)
                and (since is None or event['t'] >= since)]

    def owned(self):
        """The partitions this member owns now, from its assigned/revoked/lost events."""
        owned = set()
        for event in self.events():
            if event['event'] in ('revoked', 'lost'):
                owned -= set(event['partitions'])
            elif event['event'] == 'assigned':
                owned |= set(event['partitions'])
        return owned

    def consumed(self):
        """Every record this member reported, as (partition, offset, key) tuples."""
        return [tuple(record) for event in self.events('consumed') for record in event['records']]

    def generation(self):
        """The last generation a kafka-python member reported, or None."""
        generations = self.events('generation')
        return generations[-1]['generation'] if generations else None

    def alive(self):
        return self.process.poll() is None

    def describe(self):
        state = 'running' if self.alive() else f'exited with {self.process.returncode}'
        last = self.events()[-EVENTS_SHOWN:]
        shown = [{key: value for key, value in event.items() if key != 'records'}
                 | ({'records': len(event['records'])} if 'records' in event else {})
                 for event in last]
        return f'{self.name} ({state}), owns {sorted(self.owned())}, last events: {shown}'

    def stop(self):
        """SIGTERM: the member leaves its poll loop, calls close() and exits 0."""
        self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout=EXIT_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            fail(f'{self.name} did not exit within {EXIT_TIMEOUT_S}s of SIGTERM: {self.describe()}')
        self._reader.join(timeout=5)
        check(code == 0, f'{self.name} exited with {code} after SIGTERM: {self.describe()}')
        check(self.events('closed'), f'{self.name} exited without closing: {self.describe()}')

    def kill(self):
        """SIGKILL: a crash; the member sends nothing more, not even LeaveGroup."""
        self.process.kill()
        self.process.wait(timeout=EXIT_TIMEOUT_S)
        self._reader.join(timeout=5)


def wait_until(condition, timeout_s, what, members):
    """Polls `condition` every 100 ms; fails after timeout_s naming `what` and each member's
    state. Returns how long it took, in seconds."""
    started = time.monotonic()
    deadline = started + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return time.monotonic() - started
        for member in members:
            check(member.alive() or member.events('closed'),
                  f'{member.name} died while waiting for {what}: {member.describe()}')
        time.sleep(0.1)
    details = '\n  '.join(member.describe() for member in members)
    fail(f'no {what} within {timeout_s}s:\n  {details}')


def quiet(members, seconds):
    """A condition: no member reported a rebalance event (assigned, revoked, lost, generation)
    in the last `seconds`.

    kafka-python's leader assigns from the metadata it has when the JoinGroup answer arrives;
    if that is older than the next metadata response it asks for, it rejoins once more right
    after (a follow-up rebalance, whatever the broker). Waiting for quiet lets that happen
    before a test starts counting rebalances."""
    kinds = ('assigned', 'revoked', 'lost', 'generation')

    def condition():
        since = time.monotonic() - seconds
        return not any(event['event'] in kinds
                       for member in members for event in member.events(since=since))
    return condition


def settled(members, partition_count, expected_counts=None):
    """A condition: the members' ownerships are disjoint, cover every partition, and (when
    given) each member owns the expected number of partitions."""
    def condition():
        owned = [member.owned() for member in members]
        union = set().union(*owned)
        if sum(len(partitions) for partitions in owned) != len(union):
            return False
        if union != set(range(partition_count)):
            return False
        if expected_counts is not None:
            return sorted(len(partitions) for partitions in owned) == sorted(expected_counts)
        return all(owned)
    return condition


def message_key(index):
    return f'm-{index}'


def index_of_message_key(key):
    check(key is not None and key.startswith('m-'), f'unexpected key {key!r}')
    return int(key[2:])


def produce_indexed(bootstrap, topic, indexes, partition_count):
    """Produces message `index` to partition index % partition_count with key m-<index>;
    returns {index: (partition, offset)}."""
    producer = confluent_producer(bootstrap, {'acks': 'all', 'linger.ms': 5})
    reports = DeliveryReports()
    indexes = list(indexes)
    for index in indexes:
        producer.produce(topic, key=message_key(index), value=f'value-{index}'.encode(),
                         partition=index % partition_count, on_delivery=reports.callback(index))
        producer.poll(0)
    flush_all(producer, reports, len(indexes))
    return reports.delivered


def consumed_union(members):
    """Every (partition, offset, key, member name) the members reported."""
    return [(partition, offset, key, member.name)
            for member in members for partition, offset, key in member.consumed()]
