/**
 * Answers remembered for the duration of one request: the first lookup of a key starts the work, and
 * later lookups of that key for the same request share its promise. Keyed weakly by the request object
 * (a Node request or a Koa context), so nothing outlives the request.
 */
export function perRequestMemo<T>(): (request: object, key: string, load: () => Promise<T>) => Promise<T> {
  const answers = new WeakMap<object, Map<string, Promise<T>>>();
  return (request, key, load) => {
    let known = answers.get(request);
    if (!known) answers.set(request, (known = new Map()));
    let answer = known.get(key);
    if (!answer) known.set(key, (answer = load()));
    return answer;
  };
}
