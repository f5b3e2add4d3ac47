// Store conformance suite: placeholder until issue 4 lands.
export {};
