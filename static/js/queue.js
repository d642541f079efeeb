// Queue page: only the shared keys (n next item, g grid, q queue, ? shortcuts).
vigilKeys(function () {});
