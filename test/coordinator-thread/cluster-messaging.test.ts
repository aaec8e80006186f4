// test/cluster-messaging.test.ts again, with the coordinator in a thread of its own (support/cluster.ts start()).
process.env['PROCGROUPS_TEST_COORDINATOR'] = 'thread';
await import('../cluster-messaging.test.js');
