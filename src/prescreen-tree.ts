// The syntax tree as the pre-screen's rules see it: a flat list of nodes with their parents (built
// without recursion, so a deep tree cannot exhaust the stack) and the names the program binds.
// Pure; used by src/prescreen-walk.ts.
import type { AnyNode, Expression, Node, Pattern, Program } from 'acorn';

export interface Entry {
  node: AnyNode;
  parent: AnyNode | undefined;
  key: string;
  /** The parent's own entry, for the few rules that look two levels up. */
  up: Entry | undefined;
}

/** The keys holding child nodes, per ESTree node type acorn produces; a table beats for-in. */
const CHILD_KEYS: ReadonlyMap<string, readonly string[]> = new Map(Object.entries({
  Program: ['body'], ExpressionStatement: ['expression'], BlockStatement: ['body'], StaticBlock: ['body'],
  EmptyStatement: [], DebuggerStatement: [], WithStatement: ['object', 'body'], ReturnStatement: ['argument'],
  LabeledStatement: ['label', 'body'], BreakStatement: ['label'], ContinueStatement: ['label'],
  IfStatement: ['test', 'consequent', 'alternate'], SwitchStatement: ['discriminant', 'cases'],
  SwitchCase: ['test', 'consequent'], ThrowStatement: ['argument'], TryStatement: ['block', 'handler', 'finalizer'],
  CatchClause: ['param', 'body'], WhileStatement: ['test', 'body'], DoWhileStatement: ['body', 'test'],
  ForStatement: ['init', 'test', 'update', 'body'], ForInStatement: ['left', 'right', 'body'],
  ForOfStatement: ['left', 'right', 'body'], FunctionDeclaration: ['id', 'params', 'body'],
  VariableDeclaration: ['declarations'], VariableDeclarator: ['id', 'init'],
  ClassDeclaration: ['id', 'superClass', 'body'], ClassExpression: ['id', 'superClass', 'body'], ClassBody: ['body'],
  MethodDefinition: ['key', 'value'], PropertyDefinition: ['key', 'value'], ThisExpression: [], Super: [],
  ArrayExpression: ['elements'], ObjectExpression: ['properties'], Property: ['key', 'value'],
  FunctionExpression: ['id', 'params', 'body'], ArrowFunctionExpression: ['params', 'body'],
  UnaryExpression: ['argument'], UpdateExpression: ['argument'], BinaryExpression: ['left', 'right'],
  AssignmentExpression: ['left', 'right'], LogicalExpression: ['left', 'right'], MemberExpression: ['object', 'property'],
  ConditionalExpression: ['test', 'consequent', 'alternate'], CallExpression: ['callee', 'arguments'],
  NewExpression: ['callee', 'arguments'], SequenceExpression: ['expressions'], YieldExpression: ['argument'],
  AwaitExpression: ['argument'], TemplateLiteral: ['quasis', 'expressions'], TaggedTemplateExpression: ['tag', 'quasi'],
  TemplateElement: [], ObjectPattern: ['properties'], ArrayPattern: ['elements'], RestElement: ['argument'],
  AssignmentPattern: ['left', 'right'], SpreadElement: ['argument'], MetaProperty: ['meta', 'property'],
  ImportDeclaration: ['specifiers', 'source', 'attributes'], ImportSpecifier: ['imported', 'local'],
  ImportDefaultSpecifier: ['local'], ImportNamespaceSpecifier: ['local'], ImportAttribute: ['key', 'value'],
  ExportNamedDeclaration: ['declaration', 'specifiers', 'source', 'attributes'], ExportSpecifier: ['local', 'exported'],
  ExportDefaultDeclaration: ['declaration'], ExportAllDeclaration: ['exported', 'source', 'attributes'],
  ImportExpression: ['source', 'options'], ChainExpression: ['expression'], ParenthesizedExpression: ['expression'],
  Identifier: [], PrivateIdentifier: [], Literal: [],
}));

/** Every node with its parent, depth-first, without recursion. */
export function flatten(program: Program): Entry[] {
  const entries: Entry[] = [];
  const stack: Entry[] = [{ node: program as AnyNode, parent: undefined, key: '', up: undefined }];
  while (stack.length > 0) {
    const entry = stack.pop() as Entry;
    entries.push(entry);
    const node = entry.node as unknown as Record<string, unknown>;
    // A node type newer than this table is walked generically, so nothing under it goes unseen.
    const keys = CHILD_KEYS.get(entry.node.type) ?? Object.keys(node).filter((key) => key !== 'type');
    for (const key of keys) {
      const value = node[key];
      if (Array.isArray(value)) {
        for (let i = value.length - 1; i >= 0; i--) {
          if (isNode(value[i])) stack.push({ node: value[i] as AnyNode, parent: entry.node, key, up: entry });
        }
      } else if (isNode(value)) {
        stack.push({ node: value as AnyNode, parent: entry.node, key, up: entry });
      }
    }
  }
  return entries;
}

function isNode(value: unknown): value is Node {
  return typeof value === 'object' && value !== null && typeof (value as { type?: unknown }).type === 'string';
}

export function collectBindings(entries: readonly Entry[]): {
  constants: Map<string, Expression | null>;
  functionNames: Set<string>;
} {
  const constants = new Map<string, Expression | null>();
  const functionNames = new Set<string>();
  const bindingCount = new Map<string, number>();
  const reassigned = new Set<string>();
  const declare = (pattern: Pattern | null | undefined): void => {
    for (const name of patternNames(pattern)) {
      bindingCount.set(name, (bindingCount.get(name) ?? 0) + 1);
    }
  };
  for (const { node, parent } of entries) {
    switch (node.type) {
      case 'VariableDeclarator':
        declare(node.id);
        // var and let count too when never assigned again (checked below): `var k = 'constructor'`.
        if (node.id.type === 'Identifier' && node.init && parent?.type === 'VariableDeclaration') {
          constants.set(node.id.name, constants.has(node.id.name) ? null : node.init);
        }
        break;
      case 'AssignmentExpression':
        for (const name of patternNames(node.left as Pattern)) reassigned.add(name);
        break;
      case 'UpdateExpression':
        if (node.argument.type === 'Identifier') reassigned.add(node.argument.name);
        break;
      case 'ForInStatement':
      case 'ForOfStatement':
        if (node.left.type !== 'VariableDeclaration') for (const name of patternNames(node.left)) reassigned.add(name);
        break;
      case 'FunctionDeclaration':
      case 'FunctionExpression':
      case 'ArrowFunctionExpression':
        if (node.type !== 'ArrowFunctionExpression' && node.id) {
          declare(node.id);
          if (node.type === 'FunctionDeclaration') functionNames.add(node.id.name);
        }
        for (const param of node.params) declare(param);
        break;
      case 'ClassDeclaration':
      case 'ClassExpression':
        if (node.id) {
          declare(node.id);
          if (node.type === 'ClassDeclaration') functionNames.add(node.id.name);
        }
        break;
      case 'CatchClause':
        declare(node.param);
        break;
      case 'ImportSpecifier':
      case 'ImportDefaultSpecifier':
      case 'ImportNamespaceSpecifier':
        declare(node.local);
        break;
      default:
        break;
    }
  }
  // Scopes are not modelled: a name bound more than once (a parameter elsewhere, a minifier's
  // reused letter) or assigned anywhere may mean anything, so it is neither a known constant nor a
  // known function.
  for (const [name, count] of bindingCount) {
    if (count > 1 || reassigned.has(name)) {
      constants.set(name, null);
      functionNames.delete(name);
    }
  }
  return { constants, functionNames };
}

function patternNames(root: Pattern | null | undefined): string[] {
  const names: string[] = [];
  const stack: (AnyNode | null | undefined)[] = [root];
  while (stack.length > 0) {
    const node = stack.pop();
    if (!node) continue;
    switch (node.type) {
      case 'Identifier':
        names.push(node.name);
        break;
      case 'ObjectPattern':
        for (const property of node.properties) stack.push(property.type === 'Property' ? property.value : property);
        break;
      case 'ArrayPattern':
        stack.push(...node.elements);
        break;
      case 'AssignmentPattern':
        stack.push(node.left);
        break;
      case 'RestElement':
        stack.push(node.argument);
        break;
      default:
        break;
    }
  }
  return names;
}

/** Whether an Identifier names a variable (and is not a property key, label or import/export name). */
export function isReference({ parent, key, node }: Entry): boolean {
  if (parent === undefined) return true;
  switch (parent.type) {
    case 'MemberExpression':
      return key !== 'property' || parent.computed;
    case 'Property':
      return key !== 'key' || parent.computed;
    case 'MethodDefinition':
    case 'PropertyDefinition':
      return key !== 'key' || parent.computed;
    case 'LabeledStatement':
    case 'BreakStatement':
    case 'ContinueStatement':
    case 'MetaProperty':
      return false;
    case 'ExportSpecifier':
      return key === 'local' && node !== parent.exported;
    case 'ImportSpecifier':
      return false;
    default:
      return true;
  }
}
