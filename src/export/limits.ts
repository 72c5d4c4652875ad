// Sizes that decide how the studio hands a checkpoint over (no imports: the page reads these without the engine).

/**
 * The studio builds the zip in memory only up to this size (1 GiB): the in-memory zip holds a second copy of the
 * checkpoint in the tab. Larger checkpoints are written into a folder (showDirectoryPicker) or streamed as one zip
 * into a file (showSaveFilePicker); where the browser has neither, the in-memory zip stays offered with a warning.
 */
export const IN_MEMORY_ZIP_MAX_BYTES = 2 ** 30;
