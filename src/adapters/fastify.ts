// fastify adapter: placeholder until issue 3 lands.
export {};
