'use strict';
// kafkajs 2.2 transactions: a transactional producer ({ transactionalId, idempotent: true,
// maxInFlightRequests: 1 }) commits, aborts and sends offsets; kafkajs consumers are
// read_committed unless readUncommitted is set.
//
// 1. Topic T (one partition): transaction A sends 10 records and commits, B sends 10 and aborts,
//    C sends 10 and commits (offsets 0-9, 11-20, 22-31; markers at 10, 21, 32). A group consumer
//    with kafkajs's defaults receives exactly A and C at their offsets; one with
//    readUncommitted: true receives all 30.
// 2. Transaction D sends 5 more and stays open: the read_committed consumer receives none of
//    them within 2 s (it waits at the last stable offset); after the commit it receives all 5.
// 3. Input topic I holds 20 records. Transaction E writes 10 outputs and sendOffsets() offset 10
//    for group G: admin.fetchOffsets() shows no committed offset (-1) before the commit and 10
//    after it. Transaction F sends offset 20 and aborts: still 10. A consumer of G then starts
//    at input 10.

const {
  check, collect, makeKafka, parseArgs, runMain, sleep, waitFor,
} = require('./common');

// Group consumer settings like common.makeConsumer, plus extra options.
function consumer(kafka, groupId, options = {}) {
  return kafka.consumer({
    groupId,
    sessionTimeout: 10000,
    rebalanceTimeout: 10000,
    heartbeatInterval: 1000,
    maxWaitTimeInMs: 500,
    retry: { initialRetryTime: 100, maxRetryTime: 2000, retries: 5 },
    ...options,
  });
}

function labelled(label, count, firstOffset) {
  return Array.from({ length: count }, (_, index) => [String(firstOffset + index), `${label}-${index}`]);
}

function offsetsAndValues(received) {
  return received.map(({ message }) => [message.offset, message.value.toString()]);
}

function checkReceived(received, expected, what) {
  const got = JSON.stringify(offsetsAndValues(received));
  check(got === JSON.stringify(expected), () => `${what}: received ${got}, expected ${JSON.stringify(expected)}`);
}

async function runTransaction(producer, topic, label, count, end) {
  const transaction = await producer.transaction();
  const messages = Array.from({ length: count }, (_, index) => ({ value: `${label}-${index}`, partition: 0 }));
  await transaction.send({ topic, messages });
  if (end === 'commit') await transaction.commit();
  if (end === 'abort') await transaction.abort();
  console.log(`transaction ${label}: ${end || 'left open'}`);
  return transaction;
}

async function fetchCommitted(admin, groupId, topic) {
  const [entry] = await admin.fetchOffsets({ groupId, topics: [topic] });
  const partition = entry.partitions.find((p) => p.partition === 0);
  return partition ? partition.offset : undefined;
}

async function commitAndAbort(kafka, producer, topic) {
  await runTransaction(producer, topic, 'first', 10, 'commit');
  await runTransaction(producer, topic, 'aborted', 10, 'abort');
  await runTransaction(producer, topic, 'second', 10, 'commit');

  const committedReader = consumer(kafka, `${topic}-committed`);
  const committed = await collect(committedReader, topic);
  const uncommittedReader = consumer(kafka, `${topic}-uncommitted`, { readUncommitted: true });
  const uncommitted = await collect(uncommittedReader, topic);
  await waitFor(() => committed.received.length >= 20 && uncommitted.received.length >= 30, 30000,
    () => `20 committed and 30 uncommitted records (have ${committed.received.length}, ${uncommitted.received.length})`);
  await sleep(1000); // anything that should not be visible would arrive now
  checkReceived(committed.received, [...labelled('first', 10, 0), ...labelled('second', 10, 22)],
    'default (read_committed) consumer');
  checkReceived(uncommitted.received,
    [...labelled('first', 10, 0), ...labelled('aborted', 10, 11), ...labelled('second', 10, 22)],
    'readUncommitted consumer');
  await uncommittedReader.disconnect();
  console.log('read_committed received the 2 committed transactions, readUncommitted all 3');
  return { committedReader, committed };
}

async function openTransaction(producer, topic, reader) {
  const open = await runTransaction(producer, topic, 'open', 5, null);
  await sleep(2000);
  check(reader.committed.received.length === 20,
    () => `read_committed received ${reader.committed.received.length - 20} records of an open transaction`);
  await open.commit();
  await waitFor(() => reader.committed.received.length >= 25, 30000,
    () => `the 5 records of the committed transaction (have ${reader.committed.received.length - 20})`);
  await sleep(500);
  checkReceived(reader.committed.received.slice(20), labelled('open', 5, 33),
    'read_committed after the open transaction committed');
  await reader.committedReader.disconnect();
  console.log('read_committed waited at the open transaction and received it once committed');
}

async function sendOffsets(kafka, producer, admin, input, output, groupId) {
  const plain = kafka.producer();
  await plain.connect();
  await plain.send({
    topic: input,
    messages: Array.from({ length: 20 }, (_, index) => ({ value: `input-${index}`, partition: 0 })),
  });
  await plain.disconnect();
  for (const [offset, end, expected] of [['10', 'commit', '10'], ['20', 'abort', '10']]) {
    const transaction = await runTransaction(producer, output, `output-${offset}`, 10, null);
    await transaction.sendOffsets({
      consumerGroupId: groupId,
      topics: [{ topic: input, partitions: [{ partition: 0, offset }] }],
    });
    const pending = await fetchCommitted(admin, groupId, input);
    const before = offset === '10' ? '-1' : '10';
    check(pending === before, `offset ${offset} sent, transaction open: fetchOffsets says ${pending}, expected ${before}`);
    if (end === 'commit') await transaction.commit();
    else await transaction.abort();
    const after = await fetchCommitted(admin, groupId, input);
    check(after === expected, `offset ${offset} sent and ${end}ed: fetchOffsets says ${after}, expected ${expected}`);
    console.log(`sendOffsets ${offset} then ${end}: committed offset ${after}`);
  }
  const resumed = consumer(kafka, groupId);
  const { received } = await collect(resumed, input);
  await waitFor(() => received.length >= 10, 30000, () => `10 inputs (have ${received.length})`);
  await sleep(500);
  await resumed.disconnect();
  checkReceived(received, labelled('input', 20, 0).slice(10), `a consumer of ${groupId}`);
  console.log(`a consumer of ${groupId} resumed at the committed offset 10`);
}

async function main() {
  const args = parseArgs({ topic: 'kafkajs-txn' });
  const { topic } = args;
  const input = `${topic}-in`;
  const output = `${topic}-out`;
  const kafka = makeKafka(args.bootstrap, 'kafkajs-transactions');
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({
    topics: [topic, input, output].map((name) => ({ topic: name, numPartitions: 1, replicationFactor: 1 })),
    waitForLeaders: true,
  });
  const producer = kafka.producer({
    transactionalId: `${topic}-txn`,
    idempotent: true,
    maxInFlightRequests: 1,
  });
  await producer.connect();

  const reader = await commitAndAbort(kafka, producer, topic);
  await openTransaction(producer, topic, reader);
  await sendOffsets(kafka, producer, admin, input, output, `${topic}-group`);

  await producer.disconnect();
  await admin.disconnect();
  console.log('kafkajs transactions: commit, abort, open and sendOffsets behave as in Kafka');
}

runMain(main);
