mod btree;
mod btree_base;
mod btree_iters;
mod btree_mutator;
mod page_store;
mod table_tree;
mod table_tree_base;

pub(crate) use btree::{
    Btree, BtreeMut, BtreeStats, PagePath, RawBtree, UntypedBtree, UntypedBtreeMut, btree_stats,
};
pub use btree_base::{AccessGuard, AccessGuardMut};
pub(crate) use btree_base::{
    BRANCH, BranchAccessor, BranchMutator, BtreeHeader, Checksum, DEFERRED, LEAF, LeafAccessor,
    LeafMutator, RawLeafBuilder,
};
pub(crate) use btree_iters::{AllPageNumbersBtreeIter, BtreeExtractIf, BtreeRangeIter};
pub(crate) use page_store::{
    BuddyAllocator, FILE_FORMAT_VERSION2, MAX_PAIR_LENGTH, MAX_VALUE_LENGTH, PAGE_SIZE, Page,
    PageHint, PageNumber, PageTrackerPolicy, SerializedSavepoint, TransactionalMemory,
};
pub use page_store::{InMemoryBackend, Savepoint, file_backend};
pub(crate) use table_tree::{FreedPageList, FreedTableKey, PageListMut, TableTree, TableTreeMut};
pub(crate) use table_tree_base::{InternalTableDefinition, TableType};
