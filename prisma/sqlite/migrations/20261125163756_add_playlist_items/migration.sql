-- CreateTable
CREATE TABLE "PlaylistItem" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "virtualLiveId" TEXT NOT NULL,
    "position" INTEGER NOT NULL,
    "vodResourceId" TEXT NOT NULL,
    CONSTRAINT "PlaylistItem_virtualLiveId_fkey" FOREIGN KEY ("virtualLiveId") REFERENCES "VirtualLive" ("id") ON DELETE CASCADE ON UPDATE CASCADE,
    CONSTRAINT "PlaylistItem_vodResourceId_fkey" FOREIGN KEY ("vodResourceId") REFERENCES "VodResource" ("id") ON DELETE RESTRICT ON UPDATE CASCADE
);

-- CreateIndex
CREATE INDEX "PlaylistItem_vodResourceId_idx" ON "PlaylistItem"("vodResourceId");

-- CreateIndex
CREATE UNIQUE INDEX "PlaylistItem_virtualLiveId_position_key" ON "PlaylistItem"("virtualLiveId", "position");
