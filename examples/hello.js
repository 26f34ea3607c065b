// A classic script: what it prints is captured, its last expression is the result.
console.log('hello from a fresh isolate');
const primes = [];
for (let n = 2; primes.length < 10; n++) if (primes.every((p) => n % p !== 0)) primes.push(n);
({ primes, input: typeof input === 'undefined' ? null : input });
