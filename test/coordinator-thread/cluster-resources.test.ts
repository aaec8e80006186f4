// test/cluster-resources.test.ts again, with the coordinator in a thread of its own (support/cluster.ts start()).
process.env['PROCGROUPS_TEST_COORDINATOR'] = 'thread';
await import('../cluster-resources.test.js');
