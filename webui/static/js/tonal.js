/* Tonal balance against the reference: the maths behind the Live page's "Compare with reference"
   (drawn by spectrum.js), kept apart from the drawing so a test can call it directly.

   - The master's long-term spectrum is the mean of POWERS, band by band, of every analyser reading
     received since the comparison started (or was reset): 10 log10(mean(10^(dB/10))), as the box's
     firmware.spectrum.LongTermSpectrum averages the reference's frames.
   - The reference is moved by the offset REF's level match would give it: the master's integrated
     loudness (else its short-term) minus the reference's integrated loudness, within
     +-MAX_OFFSET_DB (firmware.reference.MAX_GAIN_DB); 0 dB when either loudness is unknown.
   - The readout is master minus aligned reference in five regions, each the power sum of the bands
     whose centres fall in it (a region's lower edge included, its upper edge not; the analyser's
     outermost bands, centred at 19.7 Hz and 20.2 kHz, belong to "low" and "high"). A region where
     both are below QUIET_DB (the graph's floor: e.g. the side of the lows after "mono bass" in both)
     has nothing to compare: its difference is null, not a number made of two noise floors. */
"use strict";
const Tonal = (() => {
  const MAX_OFFSET_DB = 24;
  const QUIET_DB = -90;
  const REGIONS = [
    { name: "low", lo: -Infinity, hi: 120, label: "20–120 Hz" },
    { name: "low-mid", lo: 120, hi: 500, label: "120–500 Hz" },
    { name: "mid", lo: 500, hi: 2000, label: "0.5–2 kHz" },
    { name: "high-mid", lo: 2000, hi: 6000, label: "2–6 kHz" },
    { name: "high", lo: 6000, hi: Infinity, label: "6–20 kHz" },
  ];
  const power = (db) => 10 ** (db / 10);
  const toDb = (p) => 10 * Math.log10(p);
  const known = (v) => typeof v === "number" && Number.isFinite(v);

  /** A running average of the master's mid and side, n bands. */
  function newAverage(n) {
    return { mid: new Float64Array(n), side: new Float64Array(n), readings: 0, seconds: 0 };
  }
  /** Adds one analyser reading (dB per band) to the sums of powers. */
  function addReading(avg, midDb, sideDb) {
    for (let i = 0; i < avg.mid.length; i++) { avg.mid[i] += power(midDb[i]); avg.side[i] += power(sideDb[i]); }
    avg.readings += 1;
  }
  /** The average so far in dB per band (null before any reading). */
  function averageDb(avg, which) {
    if (!avg.readings) return null;
    return Array.from(avg[which], (p) => toDb(p / avg.readings));
  }

  /** The level the reference is drawn at: REF's level match. meters: the meter frame (or null);
      refLufs: the reference's integrated loudness. {db, alignedTo: "integrated" | "short_term" | null,
      masterLufs, clamped}. */
  function levelOffset(meters, refLufs) {
    const m = meters || {};
    const alignedTo = known(m.out_integrated_lufs) ? "integrated" : known(m.out_short_term_lufs) ? "short_term" : null;
    if (!alignedTo || !known(refLufs)) return { db: 0, alignedTo: null, masterLufs: alignedTo ? m[`out_${alignedTo}_lufs`] : null, clamped: false };
    const masterLufs = m[`out_${alignedTo}_lufs`], want = masterLufs - refLufs;
    const db = Math.max(-MAX_OFFSET_DB, Math.min(MAX_OFFSET_DB, want));
    return { db, alignedTo, masterLufs, clamped: db !== want };
  }

  /** Master minus reference (the reference moved by offsetDb) in the five regions:
      [{name, label, bands, master_db, reference_db, diff_db}], each level the power sum of its bands. */
  function regionDifferences(bandsHz, masterDb, refDb, offsetDb) {
    return REGIONS.map((r) => {
      let m = 0, ref = 0, bands = 0;
      bandsHz.forEach((f, i) => {
        if (f >= r.lo && f < r.hi) { m += power(masterDb[i]); ref += power(refDb[i] + offsetDb); bands++; }
      });
      const master_db = toDb(m), reference_db = toDb(ref);
      const quiet = master_db < QUIET_DB && reference_db < QUIET_DB;
      return { name: r.name, label: r.label, bands, master_db, reference_db, diff_db: quiet ? null : master_db - reference_db };
    });
  }

  return { MAX_OFFSET_DB, QUIET_DB, REGIONS, newAverage, addReading, averageDb, levelOffset, regionDifferences };
})();
