"""One pattern for every long-running background job (imports, exports, training runs,
consensus runs): a row with a state, an attempt and an owner, claimed by a conditional update,
kept alive by a heartbeat that checks ownership, swept when its worker dies or its message is
lost, and finished (files published) only by the attempt that still owns it."""
