/**
 * Quantities as Kubernetes parses them (apimachinery's ParseQuantity, cases from its quantity_test.go), for the
 * cpu and memory annotations and the configuration alike; the sidecar's must be above zero.
 */
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/parse.js';
import { readOverrides } from '../../src/core/overrides.js';
import { isPositiveQuantity, isQuantity } from '../../src/core/quantity.js';

const allowed = ['^busybox(:.*)?$'];

describe('isQuantity', () => {
  it.each([
    '0', '0n', '0u', '0m', '0Ki', '0k', '0Mi', '0M', '0Gi', '0G', '0Ti', '0T', '0Pi', '0P', '0Ei', '0E',
    '1', '1n', '1u', '1m', '1Ki', '1k', '1Mi', '1M', '1Gi', '1G', '1Ti', '1T', '1Pi', '1P', '1Ei', '1E',
    '1e3', '1E3', '1e-3', '1e+3', '1.5e2', '5e-3', '0.5e-9', '1.1E-9', '12E', '1.01E', '2.5P', '9Ei', '3.001n', '0.9n',
    '100.035Ki', '0.5Mi', '0.05Gi', '0.025Ti', '0.000000000001Ki', '.001', '.0001k', '1.', '1.G', '+1', '-1', '-3.01',
    '9223372036854775807Ki',
  ])('%s is a quantity', (value) => {
    expect(isQuantity(value)).toBe(true);
  });

  it.each([
    '1.1.M', '1+1.0M', '0.1mi', '0.1am', 'aoeu', '.5i', '1i', '-3.01i', '-3.01e-', ' 1', '1 ',
    '', '.', '+', '-', '1e', '1e+', '1e1.5', '1e.5', '1e3k', '1E3Ki', '1e+-3', '1..5', '1K', '1ki', '1KI', '1KiB',
    '1Zi', '1Z', '1µ', '++1', '1,5', '1_000', '0x10', 'Inf', 'NaN', '1\n',
  ])('%j is not', (value) => {
    expect(isQuantity(value)).toBe(false);
  });
});

describe('isPositiveQuantity', () => {
  it.each(['1e3', '25m', '0.5', '1.', '+2', '0.000000000001Ki', '1E', '.1'])('%s: yes', (value) => {
    expect(isPositiveQuantity(value)).toBe(true);
  });
  it.each(['0', '0m', '0e3', '0.0Mi', '-1', '-1e3', '-0.5', '+0', 'lots'])('%s: no', (value) => {
    expect(isPositiveQuantity(value)).toBe(false);
  });
});

describe('the cpu and memory annotations and the configuration use that grammar', () => {
  it.each([
    ['1e3', true], ['1.5', true], ['2', true], ['500m', true], ['1k', true], ['0.5e1', true],
    ['-1', false], ['0', false], ['1 ', false], ['1e', false], ['50mi', false],
  ] as const)('cpu %j: accepted=%s', (value, ok) => {
    const { overrides, warnings } = readOverrides({ 'sidecar-injector.io/cpu': value }, allowed);
    expect(overrides.cpu).toBe(ok ? value : undefined);
    expect(warnings).toEqual(ok ? [] : [expect.stringMatching(/is not a positive CPU quantity/)]);
  });

  it.each([
    ['64Mi', true], ['1e9', true], ['128M', true], ['0.5Gi', true], ['64', true],
    ['-64Mi', false], ['0Mi', false], ['64MiB', false], ['64mb', false],
  ] as const)('memory %j: accepted=%s', (value, ok) => {
    const { overrides, warnings } = readOverrides({ 'sidecar-injector.io/memory': value }, allowed);
    expect(overrides.memory).toBe(ok ? value : undefined);
    expect(warnings).toEqual(ok ? [] : [expect.stringMatching(/is not a positive memory quantity/)]);
  });

  it.each([
    ['cpu: 1e3', true], ['cpu: "0.1"', true], ['cpu: 1k', true], ['memory: 1e9', true], ['memory: 64Mi', true],
    ['cpu: "-1"', false], ['cpu: "0"', false], ['memory: 64MiB', false], ['memory: "-64Mi"', false],
  ] as const)('sidecar.resources { %s }: valid=%s', (entry, ok) => {
    const [key, value] = entry.split(': ') as [string, string];
    const result = parseConfig(`sidecar: { resources: { ${key}: ${/^\d+e\d+$/.test(value) ? `"${value}"` : value} } }`);
    expect(result.ok, JSON.stringify(result)).toBe(ok);
    if (!result.ok) expect(result.error).toMatch(new RegExp(`^sidecar\\.resources\\.${key}: not a positive`));
  });
});
