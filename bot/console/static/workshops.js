// The workshops page's own script (console.js holds what pages share).
"use strict";
