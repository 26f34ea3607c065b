// Pre-screen options in three layers — operator, tenant, request — compiled into the frozen options
// prescreen() takes. Pure. Producers are not trusted: tenant and request layers may only tighten
// what the operator set, unless the operator sets `allowLoosening`.
import { z } from 'zod';
import { PrescreenRequestSchema } from './request.ts';
import type { Warning } from './result.ts';
import { RULE_IDS, RULES, isRuleId, type RuleId, type RuleSeverity } from './prescreen-rules.ts';

export type PrescreenMode = 'enforce' | 'report' | 'off';

const SeveritySchema = z.enum(['block', 'warn', 'off']);

/** The operator's settings (from config): the base every tenant and request is compiled against. */
export const PrescreenOptionsSchema = z
  .object({
    mode: z
      .enum(['enforce', 'report', 'off'])
      .describe('enforce: block rules reject; report: findings are only warnings; off: no screening at all'),
    ruleSet: z
      .enum(['default', 'strict'])
      .describe('default: the table\'s severities; strict: every syntax rule blocks (pure-computation deployments)'),
    rules: z
      .partialRecord(z.enum(RULE_IDS as [RuleId, ...RuleId[]]), SeveritySchema)
      .describe('Per-rule severity over the rule set'),
    allowLoosening: z
      .boolean()
      .describe('Let tenant and request settings loosen the screen (report mode, lower severities)'),
    maxBytes: z.number().int().positive().max(16 * 1024 * 1024).describe('Largest code screened, in UTF-8 bytes'),
    maxDepth: z.number().int().positive().max(10_000).describe('Deepest bracket nesting screened'),
    maxLineLength: z.number().int().min(0).describe('Longest line screened, in UTF-16 units; 0: no limit'),
  })
  .partial()
  .strict();

/** What an operator writes: every field optional. */
export type PrescreenOptions = z.input<typeof PrescreenOptionsSchema>;
/** One request's `prescreen` field; a tenant's policy may also pick the strict rule set. */
export type PrescreenLayer = z.input<typeof PrescreenRequestSchema> & { ruleSet?: RuleSet };
export type RuleSet = 'default' | 'strict';

export interface CompiledPrescreenOptions {
  readonly mode: PrescreenMode;
  readonly severities: Readonly<Record<RuleId, RuleSeverity>>;
  readonly maxBytes: number;
  readonly maxDepth: number;
  /** 0: no limit. */
  readonly maxLineLength: number;
  /** Settings of a tenant or request that were not obeyed; they travel as warnings. */
  readonly notices: readonly Warning[];
}

export const DEFAULT_PRESCREEN = Object.freeze({
  /** @default 'enforce' */
  mode: 'enforce',
  /** @default 'default' */
  ruleSet: 'default',
  /**
   * Producers (tenants, requests) may only tighten.
   * @default false
   */
  allowLoosening: false,
  /**
   * Screening cost grows with size; this is below the engine's own code-size limit (512 KiB).
   * @default 256 KiB
   */
  maxBytes: 256 * 1024,
  /**
   * acorn is recursive and runs out of stack near 750 levels on a default stack; real code stays
   * under 60 (measured on bench/corpus packages).
   * @default 256
   */
  maxDepth: 256,
  /** @default 0 (no limit) */
  maxLineLength: 0,
} as const satisfies Required<Omit<PrescreenOptions, 'rules'>>);

const SEVERITY_RANK: Record<RuleSeverity, number> = { off: 0, warn: 1, block: 2 };
const MODE_RANK: Record<Exclude<PrescreenMode, 'off'>, number> = { report: 0, enforce: 1 };

function ruleSetSeverities(ruleSet: RuleSet): Record<RuleId, RuleSeverity> {
  return Object.fromEntries(
    RULES.map((rule) => [rule.id, ruleSet === 'strict' && rule.kind === 'syntax' ? 'block' : rule.severity]),
  ) as Record<RuleId, RuleSeverity>;
}

/** The options one request is screened under: the operator's, tightened by the request's own layer. */
export function requestPrescreen(
  base: CompiledPrescreenOptions,
  operator: PrescreenOptions,
  perCall: PrescreenLayer | undefined,
): CompiledPrescreenOptions {
  return perCall === undefined ? base : compilePrescreenOptions(operator, undefined, perCall);
}

/**
 * Merges operator, tenant and request settings, each layer's rule set before its per-rule
 * overrides. Operator `mode: 'off'` switches screening off for everyone. A tenant or request may
 * raise a rule's severity, pick the strict rule set or go from report to enforce; lowering is
 * refused (and reported in `notices`) unless the operator set `allowLoosening`. Unknown rule ids
 * from a tenant or request are ignored with a notice; from the operator they fail validation.
 */
export function compilePrescreenOptions(
  operator: PrescreenOptions = {},
  tenant?: PrescreenLayer,
  perCall?: PrescreenLayer,
): CompiledPrescreenOptions {
  const base = PrescreenOptionsSchema.parse(operator);
  const severities = ruleSetSeverities(base.ruleSet ?? DEFAULT_PRESCREEN.ruleSet);
  for (const [id, severity] of Object.entries(base.rules ?? {})) {
    if (severity !== undefined && isRuleId(id)) severities[id] = severity;
  }
  let mode: PrescreenMode = base.mode ?? DEFAULT_PRESCREEN.mode;
  const allowLoosening = base.allowLoosening ?? DEFAULT_PRESCREEN.allowLoosening;
  const notices: Warning[] = [];

  if (mode !== 'off') {
    for (const [source, layer] of [
      ['tenant policy', tenant],
      ['request', perCall],
    ] as const) {
      if (layer === undefined) continue;
      const { ruleSet, ...rest } = layer;
      const parsed = PrescreenRequestSchema.parse(rest);
      // The strict set only raises severities: a tightening any layer may ask for.
      if (ruleSet === 'strict') {
        const strict = ruleSetSeverities('strict');
        for (const id of RULE_IDS) if (SEVERITY_RANK[strict[id]] > SEVERITY_RANK[severities[id]]) severities[id] = strict[id];
      }
      if (parsed.mode !== undefined) {
        if (allowLoosening || MODE_RANK[parsed.mode] >= MODE_RANK[mode]) mode = parsed.mode;
        else notices.push(notice(`${source} asked for prescreen mode '${parsed.mode}'; kept '${mode}'${NOT_ALLOWED}`));
      }
      for (const [id, severity] of Object.entries(parsed.rules ?? {})) {
        if (!isRuleId(id)) {
          notices.push(notice(`${source} named unknown prescreen rule '${id.slice(0, 64)}': ignored`));
        } else if (allowLoosening || SEVERITY_RANK[severity] >= SEVERITY_RANK[severities[id]]) {
          severities[id] = severity;
        } else {
          notices.push(notice(`${source} asked for rule '${id}' at '${severity}'; kept '${severities[id]}'${NOT_ALLOWED}`));
        }
      }
    }
  }

  return Object.freeze({
    mode,
    severities: Object.freeze(severities),
    maxBytes: base.maxBytes ?? DEFAULT_PRESCREEN.maxBytes,
    maxDepth: base.maxDepth ?? DEFAULT_PRESCREEN.maxDepth,
    maxLineLength: base.maxLineLength ?? DEFAULT_PRESCREEN.maxLineLength,
    notices: Object.freeze(notices),
  });
}

const NOT_ALLOWED = ' (loosening is not allowed by the operator)';

function notice(message: string): Warning {
  return { rule: 'prescreen_override_refused', message };
}

/**
 * compilePrescreenOptions for a program's `options.prescreen` (createPool, createClient): a bad
 * setting is a RangeError naming it, on one line.
 */
export function compilePrescreenOption(prescreen: PrescreenOptions): CompiledPrescreenOptions {
  try {
    return compilePrescreenOptions(prescreen);
  } catch (cause) {
    const message = cause instanceof z.ZodError ? z.prettifyError(cause).replaceAll('\n', '; ') : (cause as Error).message;
    throw new RangeError(`options.prescreen: ${message}`, { cause });
  }
}
