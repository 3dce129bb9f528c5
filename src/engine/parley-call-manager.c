/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Implementation in progress. */
