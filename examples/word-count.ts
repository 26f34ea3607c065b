// A module: its default export is called with `input`; TypeScript types are stripped first.
interface Input {
  text: string;
}

export default async function count({ text }: Input): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const word of text.toLowerCase().match(/[a-z']+/g) ?? []) counts[word] = (counts[word] ?? 0) + 1;
  return counts;
}
