// Today needs no script of its own: console.js refreshes its [data-refreshable] sections.
"use strict";
