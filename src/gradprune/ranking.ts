// The names of what ranks the layers, apart from any method's code, so that the pipeline, the recipe and the
// methods (./importance) can all say them without importing one another.

/** The layer-importance methods (./importance/index.ts lists their modules). */
export type ImportanceMethodId = 'igia' | 'igia-code' | 'bi' | 'angular' | 'taylor' | 'magnitude' | 'last';

/** What ranks the layers: IGIA as the paper defines it ('paper'), as the released script sums it ('code'), or another importance method. */
export type RankBy = 'paper' | 'code' | Exclude<ImportanceMethodId, 'igia' | 'igia-code'>;
