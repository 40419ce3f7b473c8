/** Pure pieces of the slurm launcher: sbatch argv, job id and node list parsing, shell quoting. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { slurmLauncherSchema } from '../../src/config/schema.ts';
import { shellQuote } from '../../src/launchers/slurm/cli.ts';
import { firstNode, parseJobId, sbatchArgv } from '../../src/launchers/slurm/index.ts';

test('sbatchArgv puts the options before --wrap and keeps the command one argument', () => {
  const cfg = slurmLauncherSchema.parse({
    type: 'slurm',
    command: 'x',
    partition: 'gpu',
    time: '02:00:00',
    gres: 'gpu:1',
    sbatch_args: ['--mem=16G'],
  });
  assert.deepEqual(sbatchArgv(cfg, 'hestia-llm', 'cd ~/llm && ./serve --port 8081'), [
    'sbatch',
    '--parsable',
    '-J',
    'hestia-llm',
    '--partition=gpu',
    '--time=02:00:00',
    '--gres=gpu:1',
    '--mem=16G',
    '--wrap',
    'cd ~/llm && ./serve --port 8081',
  ]);
});

test('parseJobId reads "id" and "id;cluster", and nothing else', () => {
  assert.equal(parseJobId('1234\n'), '1234');
  assert.equal(parseJobId('77;hestia\n'), '77');
  assert.equal(parseJobId('Submitted batch job 5\n'), null);
});

test('firstNode expands the first host of a Slurm node list', () => {
  assert.equal(firstNode('localhost'), 'localhost');
  assert.equal(firstNode('gpu[07-09,12]'), 'gpu07');
  assert.equal(firstNode('gpu[3,5]'), 'gpu3');
  assert.equal(firstNode('a1,b2'), 'a1');
  assert.equal(firstNode('(null)'), null);
  assert.equal(firstNode(''), null);
});

test('shellQuote leaves safe words alone and single-quotes the rest', () => {
  assert.equal(shellQuote('SLURM_CONF=/etc/slurm.conf'), 'SLURM_CONF=/etc/slurm.conf');
  assert.equal(shellQuote("it's a $HOME"), `'it'\\''s a $HOME'`);
  assert.equal(shellQuote(''), "''");
});
