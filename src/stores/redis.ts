// RedisStore: placeholder until issue 4 lands.
export {};
